//! The upper convex hull of rate-quality points: the settings worth using.
//!
//! A point is on the hull when no mix of two other points gives more quality for its rate.
//! Only the rising part is kept: a point that costs more and gives no more quality than a
//! cheaper one is never worth encoding.

/// Indices of the finite points that give more quality than every cheaper point (the rising
/// staircase of `points`, x = rate, y = quality), by ascending rate; of equal points the first
/// is kept. Every hull point is on it; between two hull points it holds the best setting of
/// each rate, which may sit a little under the hull's chord.
pub fn rising(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len())
        .filter(|&i| points[i].0.is_finite() && points[i].1.is_finite())
        .collect();
    // By rate, then best quality first, so that the first of a rate is the one to keep.
    order.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[b].1.total_cmp(&points[a].1))
            .then(a.cmp(&b))
    });
    let mut out: Vec<usize> = Vec::new();
    for i in order {
        if out.last().is_none_or(|&l| points[i].1 > points[l].1) {
            out.push(i);
        }
    }
    out
}

/// Indices of the points on the rising upper convex hull of `points` (x = rate, y = quality),
/// by ascending rate. Non-finite points are ignored; of equal points the first is kept.
pub fn upper(points: &[(f64, f64)]) -> Vec<usize> {
    let mut hull: Vec<usize> = Vec::new();
    for i in rising(points) {
        let p = points[i];
        while hull.len() >= 2 {
            let a = points[hull[hull.len() - 2]];
            let b = points[hull[hull.len() - 1]];
            // Drop b when it lies on or below the segment a → p.
            let cross = (b.0 - a.0) * (p.1 - a.1) - (b.1 - a.1) * (p.0 - a.0);
            if cross >= 0.0 {
                hull.pop();
            } else {
                break;
            }
        }
        hull.push(i);
    }
    hull
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keeps_the_concave_rising_frontier() {
        let pts = [
            (100.0, 40.0),
            (200.0, 60.0),
            (300.0, 65.0), // under the segment 200 → 400
            (400.0, 80.0),
            (500.0, 79.0), // costs more, gives less
            (50.0, 10.0),
            (200.0, 50.0), // same rate, less quality
            (f64::NAN, 99.0),
        ];
        assert_eq!(upper(&pts), [5, 0, 1, 3]);
        // The staircase keeps the point under the chord, not the ones that give nothing more.
        assert_eq!(rising(&pts), [5, 0, 1, 2, 3]);
        assert!(upper(&[]).is_empty());
        assert_eq!(upper(&[(1.0, 1.0)]), [0]);
    }

    proptest! {
        /// Every point lies on or under the hull, and the hull rises with falling slopes.
        #[test]
        fn every_point_is_under_the_hull(pts in prop::collection::vec((1.0f64..1e4, 0.0f64..100.0), 1..60)) {
            let h = upper(&pts);
            prop_assert!(!h.is_empty());
            let stairs = rising(&pts);
            prop_assert!(h.iter().all(|i| stairs.contains(i)));
            for w in stairs.windows(2) {
                prop_assert!(pts[w[1]].0 > pts[w[0]].0 && pts[w[1]].1 > pts[w[0]].1);
            }
            for w in h.windows(2) {
                prop_assert!(pts[w[1]].0 > pts[w[0]].0 && pts[w[1]].1 > pts[w[0]].1);
            }
            for w in h.windows(3) {
                let (a, b, c) = (pts[w[0]], pts[w[1]], pts[w[2]]);
                let s1 = (b.1 - a.1) / (b.0 - a.0);
                let s2 = (c.1 - b.1) / (c.0 - b.0);
                prop_assert!(s2 < s1 + 1e-12);
            }
            let first = pts[h[0]];
            let last = pts[*h.last().unwrap()];
            for p in &pts {
                if p.0 < first.0 {
                    prop_assert!(false, "a point is cheaper than the hull's first");
                }
                if p.0 >= last.0 {
                    prop_assert!(p.1 <= last.1 + 1e-9);
                    continue;
                }
                let k = h.partition_point(|&i| pts[i].0 <= p.0);
                let (a, b) = (pts[h[k - 1]], pts[h[k]]);
                let y = a.1 + (b.1 - a.1) * (p.0 - a.0) / (b.0 - a.0);
                prop_assert!(p.1 <= y + 1e-6 * (1.0 + y.abs()), "{p:?} above {a:?}–{b:?}");
            }
        }
    }
}
