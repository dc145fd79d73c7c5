//! Storage quantities compared by size (`2Gi` < `5000M`), for growing home claims: a claim is
//! grown only when the policy asks for strictly more than it requests.

/// Bytes of a storage quantity (`10Gi`, `500M`, `1.5Gi`, `1e9`); `None` when it is not one (the
/// policy's sizes are checked as quantities, a claim's may be anything the API server accepted).
pub fn bytes(s: &str) -> Option<f64> {
    let body = s.trim().strip_prefix('+').unwrap_or(s.trim());
    let end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(end);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        other => {
            let exp: i32 = other.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(exp)
        }
    };
    Some(number * factor)
}

/// Whether `wanted` is strictly more than `have` (both quantities).
pub fn larger(wanted: &str, have: &str) -> bool {
    matches!((bytes(wanted), bytes(have)), (Some(w), Some(h)) if w > h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_compare_across_suffixes() {
        assert!(larger("5Gi", "2Gi"));
        assert!(larger("2Gi", "2G"));
        assert!(!larger("2Gi", "2Gi"));
        assert!(!larger("1Gi", "2Gi"));
        assert!(larger("1.5Gi", "1Gi"));
        assert!(larger("2e9", "1G"));
        assert!(!larger("lots", "1Gi"));
        assert_eq!(bytes("1Ki"), Some(1024.0));
    }
}
