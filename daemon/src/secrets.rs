//! API keys: the shared helpers of `loopsy_transports::secrets`, plus a
//! strength estimate for `loopsy doctor` and `start`.

pub use loopsy_transports::secrets::*;

/// Estimated entropy of a key in bits: its length times the lesser of the
/// bits per character of the smallest standard alphabet that holds it and the
/// empirical (Shannon) entropy of its characters. Generous for random keys,
/// honest for short, repetitive or human-made ones.
pub fn estimated_bits(key: &str) -> f64 {
    let length = key.chars().count();
    if length == 0 {
        return 0.0;
    }
    let all = |f: fn(char) -> bool| key.chars().all(f);
    let alphabet: f64 = if all(|c| c.is_ascii_digit()) {
        10.0
    } else if all(|c| c.is_ascii_hexdigit()) {
        16.0
    } else if all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        36.0
    } else if all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        64.0
    } else {
        94.0
    };
    let mut counts = std::collections::HashMap::new();
    for c in key.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let shannon: f64 = counts
        .values()
        .map(|&n| {
            let p = n as f64 / length as f64;
            -p * p.log2()
        })
        .sum();
    length as f64 * alphabet.log2().min(shannon)
}

/// Keys below this are flagged by `doctor` and refused by `start`.
pub const MIN_KEY_BITS: f64 = 128.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_strong() -> Result<(), RandomUnavailable> {
        let key = generate_api_key()?;
        assert!(estimated_bits(&key) >= 200.0, "{}", estimated_bits(&key));
        Ok(())
    }

    #[test]
    fn weak_keys_are_recognised() {
        assert!(estimated_bits("password") < MIN_KEY_BITS);
        assert!(estimated_bits("123456") < MIN_KEY_BITS);
        assert!(estimated_bits(&"a".repeat(64)) < MIN_KEY_BITS);
        assert!(estimated_bits("") < MIN_KEY_BITS);
        assert!(estimated_bits(&"ab".repeat(32)) < MIN_KEY_BITS);
    }
}
