//! When a certificate expires: `notAfter` read straight from its DER (a walk of five fixed
//! fields of the TBSCertificate, linear and bounded), for the expiry metric and its alert.

use time::{Date, Month, PrimitiveDateTime, Time};

/// One DER element: (tag, contents, what follows). Lengths up to four bytes.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// `notAfter` of an X.509 certificate, in seconds since the Unix epoch.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (SEQUENCE, certificate, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(certificate)? else {
        return None;
    };
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == VERSION {
        rest = after;
    }
    // serialNumber, signature, issuer.
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (SEQUENCE, validity, _) = element(rest)? else {
        return None;
    };
    let (_, _, after_not_before) = element(validity)?;
    let (tag, value, _) = element(after_not_before)?;
    parse_time(tag, std::str::from_utf8(value).ok()?)
}

/// `YYMMDDHHMMSSZ` (UTCTime, years 1950-2049) or `YYYYMMDDHHMMSSZ` (GeneralizedTime).
fn parse_time(tag: u8, text: &str) -> Option<i64> {
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy: i32 = digits[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let two = |i: usize| rest[i..i + 2].parse::<u8>().ok();
    let date = Date::from_calendar_date(year, Month::try_from(two(0)?).ok()?, two(2)?).ok()?;
    let time = Time::from_hms(two(4)?, two(6)?, two(8)?).ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{Authority, CertRequest};
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn reads_the_expiry_rcgen_wrote() {
        let ca = Authority::generate("test CA", 30).expect("ca");
        let issued = ca.serving(&CertRequest::default()).expect("serving");
        for pem in [ca.cert_pem().to_string(), issued.cert_pem.clone()] {
            let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem");
            let expiry = not_after(&der).expect("notAfter");
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let days = (expiry - now) as f64 / 86_400.0;
            assert!((29.9..=30.1).contains(&days), "{days}");
        }
    }

    #[test]
    fn both_time_forms_and_garbage() {
        assert_eq!(parse_time(UTC_TIME, "491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_time(UTC_TIME, "700101000000Z"), Some(0));
        assert_eq!(
            parse_time(GENERALIZED_TIME, "20491231235959Z"),
            Some(2_524_607_999)
        );
        assert_eq!(parse_time(UTC_TIME, "20491231235959Z"), None);
        assert_eq!(parse_time(UTC_TIME, "4912312359xxZ"), None);
        assert_eq!(not_after(&[0x30, 0x82, 0xff]), None);
        assert_eq!(not_after(&[]), None);
    }
}
