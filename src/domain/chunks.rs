//! Cutting a list of keys into chunks bounded both by count and by the work each key brings
//! (a customer's open documents), so a set-based step holds a bounded amount in memory
//! whatever the skew of the book.

/// Consecutive chunks of `keys`, each with at most `max_keys` keys and a total weight of at
/// most `max_weight`, except that a key heavier than `max_weight` makes a chunk of its own.
/// Order is kept; no chunk is empty.
pub fn bounded_chunks<K>(keys: &[K], weight: impl Fn(&K) -> u64, max_keys: usize, max_weight: u64) -> Vec<&[K]> {
    let max_keys = max_keys.max(1);
    let mut chunks = Vec::new();
    let (mut start, mut total) = (0, 0u64);
    for (i, key) in keys.iter().enumerate() {
        let w = weight(key);
        if i > start && (i - start == max_keys || total.saturating_add(w) > max_weight) {
            chunks.push(&keys[start..i]);
            (start, total) = (i, 0);
        }
        total = total.saturating_add(w);
    }
    if start < keys.len() {
        chunks.push(&keys[start..]);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_stop_at_the_count_or_the_weight_whichever_comes_first() {
        let keys = [1u64, 2, 3, 4, 5, 6, 7];
        assert_eq!(
            bounded_chunks(&keys, |_| 1, 3, 100),
            vec![&[1, 2, 3][..], &[4, 5, 6], &[7]]
        );
        assert_eq!(
            bounded_chunks(&keys, |k| *k, 10, 6),
            vec![&[1, 2, 3][..], &[4], &[5], &[6], &[7]]
        );
    }

    #[test]
    fn a_key_heavier_than_the_limit_is_a_chunk_of_its_own() {
        let keys = [1u64, 50, 2, 3];
        assert_eq!(bounded_chunks(&keys, |k| *k, 10, 10), vec![&[1][..], &[50], &[2, 3]]);
        assert_eq!(bounded_chunks(&[50u64], |k| *k, 10, 10), vec![&[50][..]]);
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(bounded_chunks(&[] as &[u64], |_| 1, 10, 10).is_empty());
        // A zero count limit still makes progress.
        assert_eq!(bounded_chunks(&[1u64, 2], |_| 0, 0, 0), vec![&[1][..], &[2]]);
    }
}
