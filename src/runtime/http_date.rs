//! HTTP dates (RFC 9110 §5.6.7), for the `Date` and `Retry-After` headers.
//!
//! Accepts the three forms a recipient must accept: IMF-fixdate
//! (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
//! (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`). The weekday is
//! not checked against the date (senders get it wrong more often than the date itself).

/// The instant of an HTTP date, in milliseconds since the Unix epoch; `None` when `text` is not
/// one of the three forms or names an impossible date or an instant before 1970.
pub fn parse_http_date(text: &str) -> Option<u64> {
    let text = text.trim();
    let (day, month, year, time) = if let Some((_, rest)) = text.split_once(", ") {
        let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
        match fields.as_slice() {
            // IMF-fixdate: `06 Nov 1994 08:49:37 GMT`
            [day, month, year, time, "GMT"] => (*day, *month, parse_year(year)?, *time),
            // RFC 850: `06-Nov-94 08:49:37 GMT`
            [date, time, "GMT"] => {
                let mut parts = date.split('-');
                let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
                if parts.next().is_some() {
                    return None;
                }
                (day, month, two_digit_year(year)?, *time)
            }
            _ => return None,
        }
    } else {
        // asctime: `Sun Nov  6 08:49:37 1994`
        let fields: Vec<&str> = text.split_ascii_whitespace().collect();
        match fields.as_slice() {
            [_, month, day, time, year] => (*day, *month, parse_year(year)?, *time),
            _ => return None,
        }
    };
    let day: u32 = parse_digits(day, 1, 2)?;
    let month = month_number(month)?;
    let (hour, minute, second) = parse_time(time)?;
    if !(1..=days_in_month(year, month)).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days.checked_mul(86_400)?
        + i64::from(hour) * 3_600
        + i64::from(minute) * 60
        + i64::from(second.min(59));
    u64::try_from(seconds).ok()?.checked_mul(1_000)
}

/// The IMF-fixdate of `epoch_ms` (rounded down to the second), e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`: what a server puts in its `Date` header.
pub fn format_http_date(epoch_ms: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = epoch_ms / 1_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // civil_from_days (Howard Hinnant), for days since 1970-01-01.
    let z = i64::try_from(days).unwrap_or(i64::MAX / 2) + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let month_name = usize::try_from(month - 1).map_or("Jan", |m| MONTHS[m % 12]);
    let weekday = WEEKDAYS[usize::try_from(days % 7).unwrap_or(0)];
    format!(
        "{weekday}, {day:02} {month_name} {year} {:02}:{:02}:{:02} GMT",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

fn parse_digits<T: std::str::FromStr>(text: &str, min_len: usize, max_len: usize) -> Option<T> {
    let ok = (min_len..=max_len).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    if ok {
        text.parse().ok()
    } else {
        None
    }
}

fn parse_year(text: &str) -> Option<i64> {
    parse_digits(text, 4, 4)
}

/// RFC 9110: a two-digit year more than 50 years in the future is in the past century. Read
/// against the years this code can meet: 70..=99 are 19xx, 00..=69 are 20xx.
fn two_digit_year(text: &str) -> Option<i64> {
    let year: i64 = parse_digits(text, 2, 2)?;
    Some(if year >= 70 { 1900 + year } else { 2000 + year })
}

fn parse_time(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split(':');
    let hour = parse_digits(parts.next()?, 2, 2)?;
    let minute = parse_digits(parts.next()?, 2, 2)?;
    let second = parse_digits(parts.next()?, 2, 2)?;
    if parts.next().is_some() {
        return None;
    }
    Some((hour, minute, second))
}

fn month_number(text: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS
        .iter()
        .position(|m| *m == text)
        .and_then(|i| u32::try_from(i + 1).ok())
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_of_rfc_9110() {
        // 784111777 s = 1994-11-06T08:49:37Z, the RFC's own example.
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "  Sun, 06 Nov 1994 08:49:37 GMT ",
        ] {
            assert_eq!(parse_http_date(text), Some(784_111_777_000), "{text}");
        }
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599_000)
        );
        assert_eq!(
            parse_http_date("Fri, 31 Dec 1999 23:59:60 GMT"),
            parse_http_date("Fri, 31 Dec 1999 23:59:59 GMT"),
            "a leap second reads as the second before it"
        );
    }

    #[test]
    fn formatting_round_trips() {
        assert_eq!(
            format_http_date(784_111_777_123),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            format_http_date(1_835_481_599_000),
            "Tue, 29 Feb 2028 23:59:59 GMT"
        );
        let mut ms = 0_u64;
        while ms < 4_102_444_800_000 {
            let text = format_http_date(ms);
            assert_eq!(parse_http_date(&text), Some(ms / 1_000 * 1_000), "{text}");
            ms += 7_654_321_987;
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            "120",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Sun, 29 Feb 2027 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Wed, 31 Dec 1969 23:59:59 GMT",
            "Sun, +6 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(text), None, "{text:?}");
        }
    }
}
