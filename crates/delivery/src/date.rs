//! RFC 5322 §3.3 date-time formatting with std only.
//!
//! The civil date comes from Howard Hinnant's `civil_from_days` algorithm
//! (<https://howardhinnant.github.io/date_algorithms.html#civil_from_days>): exact for the proleptic
//! Gregorian calendar, no tables, no loops.

use std::time::{SystemTime, UNIX_EPOCH};

/// Largest timestamp with a four-digit year: 9999-12-31T23:59:59Z.
const MAX_FOUR_DIGIT_YEAR: i64 = 253_402_300_799;

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since the unix epoch, negative before it, saturating at the ends of `i64`.
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Formats a timestamp as an RFC 5322 §3.3 `date-time` in UTC, e.g. `Tue, 24 Nov 2026 20:14:05 +0000`.
///
/// ```text
/// date-time = [ day-of-week "," ] date time [CFWS]
/// date      = day month year          ; day = 1*2DIGIT, year = 4*DIGIT
/// time      = time-of-day zone        ; time-of-day = hour ":" minute [ ":" second ], zone = ("+" / "-") 4DIGIT
/// ```
///
/// Times before 1970 or after 9999 are clamped to those years' ends: `year` must be at least four digits
/// and "1900 or later" (§3.3), and a mail server's clock outside that range is broken anyway.
pub(crate) fn rfc5322(unix_secs: i64) -> String {
    let secs = unix_secs.clamp(0, MAX_FOUR_DIGIT_YEAR);
    let days = secs.div_euclid(86_400);
    let time = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 4).
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    let month = MONTHS[(month - 1) as usize];
    format!(
        "{weekday}, {day} {month} {year:04} {:02}:{:02}:{:02} +0000",
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Shift the epoch to 0000-03-01 so the leap day ends each 400-year era's years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11], March = 0
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // [1, 31]
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn epoch_is_thursday_first_of_january_1970() {
        assert_eq!(rfc5322(0), "Thu, 1 Jan 1970 00:00:00 +0000");
    }

    #[test]
    fn leap_day_2000_is_formatted() {
        // 2000 is a leap year although divisible by 100 (it is divisible by 400).
        assert_eq!(rfc5322(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc5322(951_868_799), "Tue, 29 Feb 2000 23:59:59 +0000");
        assert_eq!(rfc5322(951_868_800), "Wed, 1 Mar 2000 00:00:00 +0000");
    }

    #[test]
    fn leap_years_and_century_rules_hold() {
        // 2024-02-29 exists; 2023 goes from 28 Feb to 1 Mar; 2100 is not a leap year.
        assert_eq!(rfc5322(1_709_164_800), "Thu, 29 Feb 2024 00:00:00 +0000");
        assert_eq!(rfc5322(1_677_628_799), "Tue, 28 Feb 2023 23:59:59 +0000");
        assert_eq!(rfc5322(1_677_628_800), "Wed, 1 Mar 2023 00:00:00 +0000");
        assert_eq!(rfc5322(4_107_542_400), "Mon, 1 Mar 2100 00:00:00 +0000");
        assert_eq!(rfc5322(1_735_689_599), "Tue, 31 Dec 2024 23:59:59 +0000");
    }

    #[test]
    fn dates_after_2038_are_formatted() {
        // The signed 32-bit rollover second and the one after it.
        assert_eq!(rfc5322(2_147_483_647), "Tue, 19 Jan 2038 03:14:07 +0000");
        assert_eq!(rfc5322(2_147_483_648), "Tue, 19 Jan 2038 03:14:08 +0000");
        assert_eq!(rfc5322(1_795_551_245), "Tue, 24 Nov 2026 20:14:05 +0000");
        assert_eq!(rfc5322(32_503_680_000), "Wed, 1 Jan 3000 00:00:00 +0000");
    }

    #[test]
    fn out_of_range_times_are_clamped_to_four_digit_years() {
        assert_eq!(rfc5322(-1), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322(i64::MAX), "Fri, 31 Dec 9999 23:59:59 +0000");
    }

    #[test]
    fn every_day_of_a_four_century_era_round_trips_against_a_naive_calendar() {
        // Walk day by day from 1970 to 2400 with a straightforward calendar and compare.
        let (mut y, mut m, mut d) = (1970i64, 1i64, 1i64);
        for days in 0..(430 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let month_len = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > month_len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn an_independent_parser_reads_back_the_same_instant() {
        // mail-parser's RFC 5322 date parser as the oracle, over 1970–2100 in irregular steps.
        let samples = (0..4_102_444_800i64).step_by(7_777_777).chain([
            951_782_400,
            2_147_483_648,
            4_107_542_399,
            4_107_542_400,
        ]);
        for secs in samples {
            let header = format!("Date: {}\r\n\r\n", rfc5322(secs));
            let parsed = mail_parser::MessageParser::default().parse(header.as_bytes());
            let parsed = parsed
                .as_ref()
                .and_then(|m| m.date())
                .map(|d| d.to_timestamp());
            assert_eq!(parsed, Some(secs), "{header}");
        }
    }

    #[test]
    fn system_time_converts_on_both_sides_of_the_epoch() {
        assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(42)), 42);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(42)), -42);
    }
}
