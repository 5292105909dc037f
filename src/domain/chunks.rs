//! Cutting a list of keys into chunks bounded both by count and by the work each key brings
//! (a customer's open documents), so a set-based step holds a bounded amount in memory
//! whatever the skew of the book, without counting that work beforehand.

/// Runs `step` over consecutive chunks of `keys` of at most `max_keys` keys, in order. A
/// step that finds its chunk too heavy returns `Ok(false)` having kept nothing, and gets
/// the chunk again as two halves, each halved again as needed; a chunk of one key is never
/// given back (`Ok(false)` from it is taken as done). No chunk is empty.
///
/// The step learns the weight from its own bounded read (it reads one row past its limit),
/// so the common case is one read per chunk; counting first cost a second read of the same
/// rows for every chunk.
pub fn in_halving_chunks<K, E>(
    keys: &[K],
    max_keys: usize,
    mut step: impl FnMut(&[K]) -> Result<bool, E>,
) -> Result<(), E> {
    for chunk in keys.chunks(max_keys.max(1)) {
        // Last in, first out: the first half is pushed last and runs first, so order is kept.
        let mut pending = vec![chunk];
        while let Some(chunk) = pending.pop() {
            if !step(chunk)? && chunk.len() > 1 {
                let (first, second) = chunk.split_at(chunk.len() / 2);
                pending.push(second);
                pending.push(first);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunks a step accepted, with a step that refuses more than `max_weight`.
    fn accepted(keys: &[u64], max_keys: usize, max_weight: u64) -> (Vec<Vec<u64>>, usize) {
        let (mut done, mut calls) = (Vec::new(), 0);
        in_halving_chunks(keys, max_keys, |chunk| {
            calls += 1;
            let fits = chunk.len() == 1 || chunk.iter().sum::<u64>() <= max_weight;
            if fits {
                done.push(chunk.to_vec());
            }
            Ok::<_, ()>(fits)
        })
        .expect("step never fails");
        (done, calls)
    }

    #[test]
    fn light_keys_go_in_chunks_of_the_count_limit_in_one_step_each() {
        let (done, calls) = accepted(&[1, 1, 1, 1, 1, 1, 1], 3, 100);
        assert_eq!(done, vec![vec![1, 1, 1], vec![1, 1, 1], vec![1]]);
        assert_eq!(calls, 3);
    }

    #[test]
    fn a_heavy_chunk_is_halved_until_it_fits_keeping_order() {
        let keys = [1, 2, 3, 4, 5, 6, 7, 8];
        let (done, _) = accepted(&keys, 8, 10);
        assert_eq!(done, vec![vec![1, 2, 3, 4], vec![5], vec![6], vec![7], vec![8]]);
        assert_eq!(done.concat(), keys.to_vec());
        assert!(done.iter().all(|c| c.len() == 1 || c.iter().sum::<u64>() <= 10));
    }

    #[test]
    fn a_key_heavier_than_the_limit_is_a_chunk_of_its_own() {
        let (done, _) = accepted(&[1, 50, 2, 3], 10, 10);
        assert_eq!(done, vec![vec![1], vec![50], vec![2, 3]]);
    }

    #[test]
    fn nothing_in_nothing_out_and_errors_stop_the_walk() {
        let (done, calls) = accepted(&[], 10, 10);
        assert!(done.is_empty());
        assert_eq!(calls, 0);
        // A zero count limit still makes progress.
        assert_eq!(accepted(&[1, 2], 0, 10).0, vec![vec![1], vec![2]]);
        let mut seen = 0;
        let r = in_halving_chunks(&[1, 2, 3], 1, |_| {
            seen += 1;
            if seen == 2 { Err("stop") } else { Ok(true) }
        });
        assert_eq!((r, seen), (Err("stop"), 2));
    }
}
