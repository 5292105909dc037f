//! Money and dates written for people, per letter language (en, es, ca, fr, pl):
//! `1.250,00 €` in Spanish and Catalan, `1 250,00 €` in French and Polish, `€1,250.00` in
//! English. Amounts come in minor units with their currency; nothing is rounded.

use chrono::NaiveDate;

use crate::domain::money::{Currency, format_amount};

fn symbol(code: &str) -> Option<&'static str> {
    match code {
        "EUR" => Some("€"),
        "USD" => Some("$"),
        "GBP" => Some("£"),
        "JPY" => Some("¥"),
        "PLN" => Some("zł"),
        _ => None,
    }
}

/// Groups the integer digits by three with `sep`.
fn group(digits: &str, sep: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * sep.len());
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push_str(sep);
        }
        out.push(ch);
    }
    out
}

pub fn money(minor: i64, currency: Currency, language: &str) -> String {
    let plain = format_amount(minor, currency);
    let (negative, plain) = match plain.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, plain),
    };
    let (int, frac) = match plain.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (plain, None),
    };
    let sign = if negative { "-" } else { "" };
    let code = currency.code();
    match language {
        "en" => {
            let number = match &frac {
                Some(f) => format!("{}.{f}", group(&int, ",")),
                None => group(&int, ","),
            };
            match symbol(code) {
                Some(s) if code != "PLN" => format!("{sign}{s}{number}"),
                _ => format!("{sign}{number} {code}"),
            }
        }
        _ => {
            let sep = if matches!(language, "es" | "ca") { "." } else { " " };
            let number = match &frac {
                Some(f) => format!("{},{f}", group(&int, sep)),
                None => group(&int, sep),
            };
            format!("{sign}{number} {}", symbol(code).unwrap_or(code))
        }
    }
}

pub fn date(d: NaiveDate, language: &str) -> String {
    match language {
        "en" => d.format("%-d %B %Y").to_string(),
        "pl" => d.format("%d.%m.%Y").to_string(),
        _ => d.format("%d/%m/%Y").to_string(),
    }
}

/// Joins parts with the language's "and".
pub fn join(parts: &[String], language: &str) -> String {
    let and = match language {
        "es" => " y ",
        "ca" => " i ",
        "fr" => " et ",
        "pl" => " i ",
        _ => " and ",
    };
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{}{and}{last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").expect("eur")
    }

    #[test]
    fn money_per_language() {
        assert_eq!(money(125_000, eur(), "es"), "1.250,00 €");
        assert_eq!(money(125_000, eur(), "ca"), "1.250,00 €");
        assert_eq!(money(125_000, eur(), "fr"), "1 250,00 €");
        assert_eq!(money(125_000, eur(), "pl"), "1 250,00 €");
        assert_eq!(money(125_000, eur(), "en"), "€1,250.00");
        assert_eq!(money(123_456_789, eur(), "es"), "1.234.567,89 €");
        assert_eq!(money(50, eur(), "fr"), "0,50 €");
        let pln = Currency::parse("PLN").expect("pln");
        assert_eq!(money(99_900, pln, "pl"), "999,00 zł");
        assert_eq!(money(99_900, pln, "en"), "999.00 PLN");
        let jpy = Currency::parse("JPY").expect("jpy");
        assert_eq!(money(1_500_000, jpy, "en"), "¥1,500,000");
        let chf = Currency::parse("CHF").expect("chf");
        assert_eq!(money(100_000, chf, "fr"), "1 000,00 CHF");
    }

    #[test]
    fn dates_and_lists() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 3).expect("date");
        assert_eq!(date(d, "en"), "3 November 2026");
        assert_eq!(date(d, "es"), "03/11/2026");
        assert_eq!(date(d, "pl"), "03.11.2026");
        assert_eq!(join(&["a".into(), "b".into(), "c".into()], "es"), "a, b y c");
        assert_eq!(join(&["a".into()], "fr"), "a");
    }
}
