//! Medians and ranges of a figure over repetitions, and how numbers and spreads print in
//! the tables.

/// Median and range of some values.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spread {
    pub(super) median: f64,
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) n: usize,
}

pub(super) fn spread(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Spread {
        median,
        min: v[0],
        max: v[n - 1],
        n,
    })
}

pub(super) fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

pub(super) fn fmt_spread(s: Option<Spread>) -> String {
    match s {
        None => "–".into(),
        Some(s) if s.n == 1 || s.min == s.max => fmt_num(s.median),
        Some(s) => format!(
            "{} [{}–{}]",
            fmt_num(s.median),
            fmt_num(s.min),
            fmt_num(s.max)
        ),
    }
}

/// [`fmt_spread`], saying how many of `total` repetitions gave a value when not all did.
pub(super) fn fmt_spread_of(s: Option<Spread>, total: usize) -> String {
    match s {
        Some(sp) if sp.n < total => format!("{} ({} of {total} runs)", fmt_spread(s), sp.n),
        _ => fmt_spread(s),
    }
}
