//! Secret lifetimes: the `--expires-in` / `--min-validity` syntax (`90d`, `12w`, `24mo`, `1y`),
//! calendar arithmetic, and the tenant policy's ISO 8601 maximum (`P180D`) turned into the same
//! syntax, so the error that quotes it can be pasted. Shared by make-secret, which creates the
//! secret, and preflight, which checks the lifetime the runbook will ask for against the
//! tenant's policy before any write.

use std::fmt;

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

/// A secret lifetime. Months and years are calendar months (24mo from 26 Nov 2026 ends on
/// 26 Nov 2028), as the portal's "24 months" reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    Days(u32),
    Months(u32),
}

/// What a new secret lives when neither `--expires-in` nor `secret.lifetime` says: the portal's
/// recommended 24 months.
pub const DEFAULT_LIFETIME: Lifetime = Lifetime::Months(24);

/// `90d`, `12w`, `24mo`, `1y` (also spelled out: `90days`, `2years`).
pub fn parse_lifetime(s: &str) -> std::result::Result<Lifetime, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("{s:?} is not a lifetime (try 90d, 12w, 24mo or 1y)");
    let n: u32 = num.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!(
            "{s:?} is zero; a lifetime must be at least one day"
        ));
    }
    let l = match unit.trim() {
        "d" | "day" | "days" => Lifetime::Days(n),
        "w" | "week" | "weeks" => Lifetime::Days(n.checked_mul(7).ok_or_else(bad)?),
        "mo" | "month" | "months" => Lifetime::Months(n),
        "y" | "year" | "years" => Lifetime::Months(n.checked_mul(12).ok_or_else(bad)?),
        "" => return Err(format!("{s:?} has no unit (use d, w, mo or y)")),
        _ => return Err(bad()),
    };
    // A century is far beyond any tenant policy; the bound keeps date arithmetic in range.
    let too_long = match l {
        Lifetime::Days(d) => d > 36_500,
        Lifetime::Months(m) => m > 1_200,
    };
    if too_long {
        return Err(format!("{s:?} is longer than 100 years"));
    }
    Ok(l)
}

impl Lifetime {
    /// The instant this long after `t`.
    pub fn after(self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Lifetime::Days(d) => t.checked_add(time::Duration::days(i64::from(d))),
            Lifetime::Months(m) => add_months(t, m),
        }
    }

    /// The tenant app management policy's `maxLifetime` (an ISO 8601 duration such as `P180D`,
    /// `P6M`, `P1Y6M`, `P90DT12H`; Learn "passwordCredentialConfiguration") as the longest
    /// lifetime in this tool's syntax that the policy accepts. Months and days mixed are counted
    /// as 28-day months, and hours are dropped, so the suggestion never exceeds the policy.
    pub fn from_iso8601(s: &str) -> Option<Lifetime> {
        let rest = s.trim().strip_prefix('P')?;
        let (date, _time) = rest.split_once('T').unwrap_or((rest, ""));
        let (mut years, mut months, mut weeks, mut days) = (0u32, 0u32, 0u32, 0u32);
        let mut num = String::new();
        for c in date.chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let n: u32 = num.parse().ok()?;
            num.clear();
            match c {
                'Y' => years = n,
                'M' => months = n,
                'W' => weeks = n,
                'D' => days = n,
                _ => return None,
            }
        }
        if !num.is_empty() {
            return None;
        }
        let total_months = years.checked_mul(12)?.checked_add(months)?;
        let total_days = weeks.checked_mul(7)?.checked_add(days)?;
        let l = match (total_months, total_days) {
            (0, 0) => return None,
            (m, 0) => Lifetime::Months(m),
            (0, d) => Lifetime::Days(d),
            (m, d) => Lifetime::Days(m.checked_mul(28)?.checked_add(d)?),
        };
        Some(l)
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lifetime::Days(d) => write!(f, "{d}d"),
            Lifetime::Months(m) => write!(f, "{m}mo"),
        }
    }
}

/// Calendar months; the day is clamped to the target month's length (31 Jan + 1mo = 28/29 Feb).
pub fn add_months(t: OffsetDateTime, months: u32) -> Option<OffsetDateTime> {
    let total = i64::from(t.year()) * 12 + i64::from(u8::from(t.month())) - 1 + i64::from(months);
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let day = t.day().min(month.length(year));
    let date = Date::from_calendar_date(year, month, day).ok()?;
    Some(t.replace_date(date))
}

/// RFC 3339 in whole seconds, as Graph's `endDateTime` takes it.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90d"), Ok(Lifetime::Days(90)));
        assert_eq!(parse_lifetime("12w"), Ok(Lifetime::Days(84)));
        assert_eq!(parse_lifetime("24mo"), Ok(Lifetime::Months(24)));
        assert_eq!(parse_lifetime("1y"), Ok(Lifetime::Months(12)));
        assert_eq!(parse_lifetime("2 years"), Ok(Lifetime::Months(24)));
        for bad in ["", "0d", "10", "-1d", "5x", "1.5y", "200y", "99999999999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad:?} should be refused");
        }
        // What is recorded in secret.lifetime parses back to itself.
        for l in [Lifetime::Days(90), Lifetime::Months(24)] {
            assert_eq!(parse_lifetime(&l.to_string()), Ok(l));
        }
    }

    #[test]
    fn policy_durations_become_the_longest_lifetime_they_allow() {
        assert_eq!(Lifetime::from_iso8601("P180D"), Some(Lifetime::Days(180)));
        assert_eq!(Lifetime::from_iso8601("P6M"), Some(Lifetime::Months(6)));
        assert_eq!(Lifetime::from_iso8601("P1Y6M"), Some(Lifetime::Months(18)));
        assert_eq!(Lifetime::from_iso8601("P2W"), Some(Lifetime::Days(14)));
        assert_eq!(Lifetime::from_iso8601("P90DT12H"), Some(Lifetime::Days(90)));
        assert_eq!(Lifetime::from_iso8601("P1M3D"), Some(Lifetime::Days(31)));
        for bad in ["", "180D", "P", "PT12H", "P1X", "P12"] {
            assert_eq!(Lifetime::from_iso8601(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn calendar_months_clamp_the_day() {
        let t = time::macros::datetime!(2026-01-31 10:00 UTC);
        assert_eq!(
            add_months(t, 1),
            Some(time::macros::datetime!(2026-02-28 10:00 UTC))
        );
        assert_eq!(
            add_months(t, 25),
            Some(time::macros::datetime!(2028-02-29 10:00 UTC))
        );
        let t = time::macros::datetime!(2026-11-26 00:00 UTC);
        assert_eq!(
            Lifetime::Months(24).after(t),
            Some(time::macros::datetime!(2028-11-26 00:00 UTC))
        );
        assert_eq!(
            rfc3339(time::macros::datetime!(2028-11-26 00:00:00.5 UTC)),
            "2028-11-26T00:00:00Z"
        );
    }
}
