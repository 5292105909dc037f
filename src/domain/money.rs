//! Money: ISO 4217 currencies with their minor-unit exponents, and the conversion between
//! the API's decimal strings and the integer minor units stored in the database. Nothing
//! here rounds: a value that does not fit its currency exactly is an error.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use bigdecimal::num_bigint::BigInt;

/// ISO 4217 codes this service accepts, with their minor-unit exponent (ISO 4217 list one,
/// the "Minor unit" column). Sorted by code for binary search.
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MAD", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PEN", 2),
    ("PHP", 2),
    ("PLN", 2),
    ("RON", 2),
    ("RSD", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("UYU", 2),
    ("VND", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("ZAR", 2),
];

/// A known ISO 4217 currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    exponent: u32,
}

impl Currency {
    pub const EUR: Currency = Currency {
        code: "EUR",
        exponent: 2,
    };

    /// A code read back from the database, where only parsed codes are written. A code
    /// missing from the table (a row edited by hand) reads as two decimals, like EUR,
    /// rather than failing every read of the row.
    pub fn stored(code: &str) -> Currency {
        Currency::parse(code).unwrap_or(Currency::EUR)
    }

    /// Looks a code up; codes are upper case, exactly three letters.
    pub fn parse(code: &str) -> Option<Currency> {
        CURRENCIES
            .binary_search_by(|(c, _)| (*c).cmp(code))
            .ok()
            .map(|i| Currency {
                code: CURRENCIES[i].0,
                exponent: CURRENCIES[i].1,
            })
    }

    pub fn code(self) -> &'static str {
        self.code
    }

    /// Number of decimal digits of the minor unit (EUR 2, JPY 0, BHD 3).
    pub fn exponent(self) -> u32 {
        self.exponent
    }

    /// All supported codes, for documentation and error messages.
    pub fn all_codes() -> impl Iterator<Item = &'static str> {
        CURRENCIES.iter().map(|(c, _)| *c)
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyError {
    NotADecimal,
    TooManyDecimals { allowed: u32 },
    Negative,
    TooLarge,
}

impl std::fmt::Display for MoneyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MoneyError::NotADecimal => f.write_str("must be a decimal number as a string, e.g. \"1250.00\""),
            MoneyError::TooManyDecimals { allowed: 0 } => {
                f.write_str("has decimals but the currency has no minor unit")
            }
            MoneyError::TooManyDecimals { allowed } => {
                write!(f, "has more than {allowed} decimal places for its currency")
            }
            MoneyError::Negative => f.write_str("must not be negative"),
            MoneyError::TooLarge => f.write_str("is too large"),
        }
    }
}

/// Parses a non-negative decimal string into minor units of `currency`, exactly.
pub fn parse_amount(text: &str, currency: Currency) -> Result<i64, MoneyError> {
    let trimmed = text.trim();
    // Plain decimal notation only: no exponents, no signs other than a leading minus.
    let plain = !trimmed.is_empty()
        && trimmed
            .char_indices()
            .all(|(i, ch)| ch.is_ascii_digit() || ch == '.' || (i == 0 && ch == '-'))
        && trimmed.chars().filter(|c| *c == '.').count() <= 1
        && trimmed.chars().any(|c| c.is_ascii_digit());
    if !plain || trimmed.len() > 40 {
        return Err(MoneyError::NotADecimal);
    }
    let value = BigDecimal::from_str(trimmed).map_err(|_| MoneyError::NotADecimal)?;
    if value.sign() == bigdecimal::num_bigint::Sign::Minus {
        return Err(MoneyError::Negative);
    }
    let scaled = value.normalized();
    let (_, scale) = scaled.as_bigint_and_exponent();
    if scale > i64::from(currency.exponent) {
        return Err(MoneyError::TooManyDecimals {
            allowed: currency.exponent,
        });
    }
    let minor = value.with_scale(i64::from(currency.exponent));
    let (digits, _) = minor.as_bigint_and_exponent();
    i64::try_from(digits).map_err(|_| MoneyError::TooLarge)
}

/// Formats minor units as the API's decimal string: `125000` EUR → `"1250.00"`.
pub fn format_amount(minor: i64, currency: Currency) -> String {
    BigDecimal::new(BigInt::from(minor), i64::from(currency.exponent)).to_plain_string()
}

/// Formats minor units for a currency code read back from storage. Codes in storage were
/// validated on the way in; an unknown one is shown with two decimals rather than failing
/// a read.
pub fn format_stored(minor: i64, code: &str) -> String {
    format_amount(minor, Currency::stored(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::EUR
    }

    #[test]
    fn stored_codes_read_back_with_their_exponent_and_unknown_ones_with_two() {
        assert_eq!(
            Currency::parse("EUR"),
            Some(Currency::EUR),
            "the constant matches the table"
        );
        assert_eq!(Currency::stored("JPY").exponent(), 0);
        assert_eq!(Currency::stored("BHD").exponent(), 3);
        assert_eq!(Currency::stored("XYZ").exponent(), 2);
        assert_eq!(format_stored(12_345, "XYZ"), "123.45");
        assert_eq!(format_stored(12_345, "JPY"), "12345");
    }

    #[test]
    fn table_is_sorted_and_has_the_required_currencies() {
        let codes: Vec<_> = Currency::all_codes().collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        assert_eq!(codes, sorted, "binary search needs a sorted table");
        for code in [
            "EUR", "USD", "GBP", "PLN", "CHF", "SEK", "NOK", "DKK", "CZK", "HUF", "RON", "JPY", "MXN", "COP", "CLP",
            "ARS", "BRL", "BHD", "KWD",
        ] {
            assert!(Currency::parse(code).is_some(), "{code} missing");
        }
        assert_eq!(Currency::parse("JPY").map(Currency::exponent), Some(0));
        assert_eq!(Currency::parse("BHD").map(Currency::exponent), Some(3));
        assert_eq!(Currency::parse("CLP").map(Currency::exponent), Some(0));
        assert!(Currency::parse("eur").is_none());
        assert!(Currency::parse("XYZ").is_none());
    }

    #[test]
    fn parses_exact_amounts() {
        assert_eq!(parse_amount("1250.00", eur()), Ok(125_000));
        assert_eq!(parse_amount("1250", eur()), Ok(125_000));
        assert_eq!(parse_amount("0.5", eur()), Ok(50));
        assert_eq!(parse_amount("0", eur()), Ok(0));
        assert_eq!(parse_amount("1.100", eur()), Ok(110), "trailing zeros are not decimals");
        let bhd = Currency::parse("BHD").expect("known");
        assert_eq!(parse_amount("1.234", bhd), Ok(1234));
        let jpy = Currency::parse("JPY").expect("known");
        assert_eq!(parse_amount("1500", jpy), Ok(1500));
    }

    #[test]
    fn refuses_what_would_need_rounding_or_is_not_money() {
        assert_eq!(
            parse_amount("1.005", eur()),
            Err(MoneyError::TooManyDecimals { allowed: 2 })
        );
        let jpy = Currency::parse("JPY").expect("known");
        assert_eq!(
            parse_amount("10.5", jpy),
            Err(MoneyError::TooManyDecimals { allowed: 0 })
        );
        assert_eq!(parse_amount("-1.00", eur()), Err(MoneyError::Negative));
        for bad in ["", "abc", "1e3", "1,00", "+1", "1.2.3", ".", "-", "NaN", "Infinity"] {
            assert_eq!(parse_amount(bad, eur()), Err(MoneyError::NotADecimal), "{bad:?}");
        }
        assert_eq!(parse_amount("99999999999999999999", eur()), Err(MoneyError::TooLarge));
    }

    #[test]
    fn formats_with_the_currency_exponent() {
        assert_eq!(format_amount(125_000, eur()), "1250.00");
        assert_eq!(format_amount(5, eur()), "0.05");
        assert_eq!(format_amount(0, eur()), "0.00");
        assert_eq!(format_amount(-150, eur()), "-1.50");
        assert_eq!(format_amount(1500, Currency::parse("JPY").expect("known")), "1500");
        assert_eq!(format_amount(1234, Currency::parse("KWD").expect("known")), "1.234");
    }

    #[test]
    fn round_trips() {
        for minor in [0_i64, 1, 99, 100, 123_456_789, i64::MAX] {
            let text = format_amount(minor, eur());
            assert_eq!(parse_amount(&text, eur()), Ok(minor));
        }
    }
}
