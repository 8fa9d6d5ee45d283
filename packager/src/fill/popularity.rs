//! Predicted views (`pop.csv`): one row per title and region, with a header naming the columns.
//!
//! ```csv
//! title,region,views,licensed_from,licensed_until,rung
//! big-buck-bunny,gb,120000,2026-01-01,2027-01-01,
//! big-buck-bunny,gb,80000,,,720p-3000k
//! ```
//!
//! `title`, `region` and `views` are required. A licence window (`licensed_from`,
//! `licensed_until`: a date or an RFC 3339 UTC time; either end may be empty for open) limits
//! where and when a title may be filled; a title with any licence row for a region is licensed
//! there only inside one of its windows. A `rung` column gives a rung's own views (the order in
//! which an edge takes a title's rungs when the whole title does not fit).

use std::collections::BTreeMap;

/// A licence window: from, until, in seconds since 1970 (`None`: open).
pub type Licence = (Option<u64>, Option<u64>);

/// True when `licences` allow `now` (no licence at all: no restriction).
pub fn licensed_at(licences: &[Licence], now: u64) -> bool {
    licences.is_empty()
        || licences
            .iter()
            .any(|(from, until)| from.is_none_or(|f| now >= f) && until.is_none_or(|u| now < u))
}

/// One title in one region.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Demand {
    /// Predicted views of the title.
    pub views: u64,
    /// Views by rung, when given.
    pub rung_views: BTreeMap<String, u64>,
    /// Licence windows (from, until) in seconds since 1970; empty: no restriction.
    pub licences: Vec<Licence>,
}

impl Demand {
    /// True when the title may be in this region at `now`.
    pub fn licensed(&self, now: u64) -> bool {
        licensed_at(&self.licences, now)
    }
}

/// Demand by (title, region).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Popularity(pub BTreeMap<(String, String), Demand>);

impl Popularity {
    /// The demand of `title` in `region`, if any row names them.
    pub fn get(&self, title: &str, region: &str) -> Option<&Demand> {
        self.0.get(&(title.to_owned(), region.to_owned()))
    }

    /// True when `title` may be in `region` at `now` (titles with no row there are licensed).
    pub fn licensed(&self, title: &str, region: &str, now: u64) -> bool {
        self.get(title, region).is_none_or(|d| d.licensed(now))
    }

    /// Parses the CSV; errors name the line.
    pub fn parse(text: &str) -> Result<Self, PopularityError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        // The header's errors say line 1, wherever it is.
        let at_header = |source| PopularityError { line: 1, source };
        let Some((_, header)) = lines.next() else {
            return Err(at_header(RowError::Empty));
        };
        let columns = Columns::parse(header).map_err(at_header)?;
        let mut out = Popularity::default();
        for (i, line) in lines {
            out.add_row(&columns, line)
                .map_err(|source| PopularityError {
                    line: i + 1,
                    source,
                })?;
        }
        Ok(out)
    }

    /// Adds one row's views and licence.
    fn add_row(&mut self, columns: &Columns, line: &str) -> Result<(), RowError> {
        let fields = split(line)?;
        if fields.len() != columns.count {
            return Err(RowError::Fields {
                found: fields.len(),
                expected: columns.count,
            });
        }
        let field = |c: Option<usize>| c.map(|c| fields[c].trim()).filter(|f| !f.is_empty());
        let (Some(t), Some(r)) = (field(Some(columns.title)), field(Some(columns.region))) else {
            return Err(RowError::EmptyKey);
        };
        let v: u64 = field(Some(columns.views))
            .unwrap_or("0")
            .parse()
            .map_err(|_| RowError::Views {
                text: fields[columns.views].clone(),
            })?;
        let time = |c: Option<usize>| field(c).map(parse_time).transpose();
        let (f, u) = (time(columns.from)?, time(columns.until)?);
        if let (Some(f), Some(u)) = (f, u)
            && f >= u
        {
            return Err(RowError::LicenceEnds);
        }
        let d = self.0.entry((t.to_owned(), r.to_owned())).or_default();
        match field(columns.rung) {
            Some(name) => *d.rung_views.entry(name.to_owned()).or_default() += v,
            None => d.views += v,
        }
        if f.is_some() || u.is_some() {
            d.licences.push((f, u));
        }
        Ok(())
    }
}

/// Why `pop.csv` is refused: where, and what is wrong there.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {source}")]
pub struct PopularityError {
    /// The line, from 1 (the header's errors say 1).
    pub line: usize,
    /// What is wrong on it.
    pub source: RowError,
}

/// What is wrong on one line of `pop.csv`.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// No header at all.
    #[error("empty file (expected a header: title,region,views,…)")]
    Empty,
    /// A header without a required column.
    #[error("the header {header:?} lacks title, region or views")]
    Header {
        /// The header line.
        header: String,
    },
    /// A column that is not one of the known ones.
    #[error("unknown column {column:?}")]
    UnknownColumn {
        /// The column, lower case.
        column: String,
    },
    /// A row with more or fewer fields than the header.
    #[error("{found} fields (the header has {expected})")]
    Fields {
        /// Fields in the row.
        found: usize,
        /// Columns of the header.
        expected: usize,
    },
    /// A row without a title or a region.
    #[error("empty title or region")]
    EmptyKey,
    /// Views that are not a count.
    #[error("views {text:?} (expected a count)")]
    Views {
        /// The field as written.
        text: String,
    },
    /// A licence time that does not parse.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// A licence that ends before it starts.
    #[error("the licence ends before it starts")]
    LicenceEnds,
    /// An opening quote without its closing one.
    #[error("a quoted field is not closed")]
    Unclosed,
}

/// A time that is not `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Debug, thiserror::Error)]
#[error("time {text:?} (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC)")]
pub struct TimeError {
    /// The time as written.
    pub text: String,
}

/// The columns of the header, by position.
struct Columns {
    /// How many there are.
    count: usize,
    title: usize,
    region: usize,
    views: usize,
    from: Option<usize>,
    until: Option<usize>,
    rung: Option<usize>,
}

impl Columns {
    /// Reads the header: the required columns, and no unknown one.
    fn parse(header: &str) -> Result<Self, RowError> {
        let columns: Vec<String> = split(header)?
            .into_iter()
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        let col = |name: &str| columns.iter().position(|c| c == name);
        let (Some(title), Some(region), Some(views)) = (col("title"), col("region"), col("views"))
        else {
            return Err(RowError::Header {
                header: header.to_owned(),
            });
        };
        const KNOWN: [&str; 6] = [
            "title",
            "region",
            "views",
            "licensed_from",
            "licensed_until",
            "rung",
        ];
        if let Some(c) = columns.iter().find(|c| !KNOWN.contains(&c.as_str())) {
            return Err(RowError::UnknownColumn { column: c.clone() });
        }
        Ok(Self {
            count: columns.len(),
            title,
            region,
            views,
            from: col("licensed_from"),
            until: col("licensed_until"),
            rung: col("rung"),
        })
    }
}

/// Splits a CSV line; fields may be double-quoted (with `""` for a quote).
fn split(line: &str) -> Result<Vec<String>, RowError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.trim().is_empty() => {
                cur.clear();
                quoted = true;
            }
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err(RowError::Unclosed);
    }
    out.push(cur);
    Ok(out)
}

/// Seconds since 1970 of `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn parse_time(text: &str) -> Result<u64, TimeError> {
    let bad = || TimeError {
        text: text.to_owned(),
    };
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or_else(bad)?)),
        None => (text, None),
    };
    let p: Vec<&str> = date.split('-').collect();
    let [y, m, d] = p.as_slice() else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let secs = match time {
        None => 0,
        Some(t) => {
            let q: Vec<u64> = t
                .split(':')
                .map(|x| x.parse().map_err(|_| bad()))
                .collect::<Result<_, _>>()?;
            match q.as_slice() {
                [h, mi, s] if *h < 24 && *mi < 60 && *s < 61 => h * 3600 + mi * 60 + s,
                _ => return Err(bad()),
            }
        }
    };
    // Days from the civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days as u64 * 86_400 + secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_licences_and_rungs() {
        let p = Popularity::parse(
            "title,region,views,licensed_from,licensed_until,rung\n\
             a,gb,100,2026-01-01,2027-01-01,\n\
             a,gb,30,,,720p\n\
             \"b, the sequel\",gb,50,,,\n\
             b,fr,5,2030-01-01T00:00:00Z,,\n",
        )
        .unwrap();
        let a = p.get("a", "gb").unwrap();
        assert_eq!((a.views, a.rung_views["720p"]), (100, 30));
        let day = |s: &str| parse_time(s).unwrap();
        assert!(p.licensed("a", "gb", day("2026-06-01")));
        assert!(!p.licensed("a", "gb", day("2027-01-01")));
        assert!(
            p.licensed("b, the sequel", "gb", 0),
            "no licence row: no restriction"
        );
        assert!(!p.licensed("b", "fr", day("2029-12-31")));
        assert!(p.licensed("nothing", "xx", 0));
        assert_eq!(day("1970-01-02"), 86_400);
        assert_eq!(day("2000-03-01T00:00:01Z"), 951_868_801);
    }

    #[test]
    fn bad_rows_say_where() {
        for (csv, says) in [
            ("", "line 1"),
            ("title,views\n", "lacks"),
            ("title,region,views,colour\n", "unknown column"),
            ("title,region,views\na,gb,many\n", "line 2: views"),
            ("title,region,views\na,gb\n", "line 2: 2 fields"),
            ("title,region,views\n\"a,gb,1\n", "not closed"),
            (
                "title,region,views,licensed_from\na,gb,1,2026-13-01\n",
                "line 2: time",
            ),
            (
                "title,region,views,licensed_from,licensed_until\na,gb,1,2027-01-01,2026-01-01\n",
                "ends before",
            ),
        ] {
            let e = Popularity::parse(csv).unwrap_err().to_string();
            assert!(e.contains(says), "{csv:?}: {e}");
        }
    }
}
