//! INTERNALDATE conversions between unix seconds (the store) and IMAP dates (the wire).

use tern_proto::imap::{Date, DateTime};

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number (inverse of [`days_from_civil`]).
pub(crate) fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day number of an IMAP date (SEARCH BEFORE/ON/SINCE).
pub(crate) fn date_days(date: &Date) -> i64 {
    days_from_civil(i64::from(date.year), date.month, date.day)
}

/// Whether a date exists in the calendar: the grammar (RFC 9051 `date-day-fixed`) lets any
/// month have 31 days.
pub(crate) fn exists(date: &Date) -> bool {
    let (year, month, day) = civil_from_days(date_days(date));
    (year, month, day) == (i64::from(date.year), date.month, date.day)
}

/// The UTC day number of unix seconds.
pub(crate) fn unix_days(secs: i64) -> i64 {
    secs.div_euclid(86_400)
}

/// INTERNALDATE as sent: UTC, `+0000`.
pub(crate) fn to_date_time(secs: i64) -> DateTime {
    let (year, month, day) = civil_from_days(unix_days(secs));
    let rem = secs.rem_euclid(86_400);
    DateTime {
        date: Date {
            year: year.clamp(0, 9999) as u16,
            month,
            day,
        },
        hour: (rem / 3600) as u8,
        minute: (rem % 3600 / 60) as u8,
        second: (rem % 60) as u8,
        zone_minutes: 0,
    }
}

/// Unix seconds of an APPEND date-time.
pub(crate) fn from_date_time(dt: &DateTime) -> i64 {
    date_days(&dt.date) * 86_400
        + i64::from(dt.hour) * 3600
        + i64::from(dt.minute) * 60
        + i64::from(dt.second)
        - i64::from(dt.zone_minutes) * 60
}

/// Now, in unix seconds.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_unix_seconds() {
        let dt = to_date_time(1_700_000_000);
        assert_eq!((dt.date.year, dt.date.month, dt.date.day), (2023, 11, 14));
        assert_eq!((dt.hour, dt.minute, dt.second), (22, 13, 20));
        assert_eq!(from_date_time(&dt), 1_700_000_000);
        let zoned = DateTime {
            zone_minutes: -420,
            ..dt
        };
        assert_eq!(from_date_time(&zoned), 1_700_000_000 + 7 * 3600);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn only_calendar_dates_exist() {
        let date = |year, month, day| Date { year, month, day };
        assert!(exists(&date(2024, 2, 29)));
        assert!(exists(&date(2024, 12, 31)));
        assert!(!exists(&date(2023, 2, 29)));
        assert!(!exists(&date(2024, 2, 31)));
        assert!(!exists(&date(2024, 4, 31)));
        assert!(!exists(&date(2024, 13, 1)));
    }
}
