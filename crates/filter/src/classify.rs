//! Robinson–Fisher combining: the statistical classifier's arithmetic, with no I/O.
//!
//! Sources: Gary Robinson, "A Statistical Approach to the Spam Problem", Linux Journal 107 (2003) —
//! f(w) with strength `s` and assumed probability `x`, and the chi-square (Fisher) combining of the
//! f(w) of the most extreme tokens; Tim Peters' `chi2Q` in SpamBayes for the even-degrees
//! chi-square survival function. The constants are Robinson's and bogofilter's defaults.

use tern_store::TokenCounts;

/// Robinson's `s`: how strongly the assumed probability `x` weighs against little data.
pub(crate) const STRENGTH: f64 = 1.0;
/// Robinson's `x`: the probability assumed for a token never seen.
pub(crate) const ASSUMED: f64 = 0.5;
/// Tokens with |f(w) − 0.5| below this say too little to be used (bogofilter's `min_dev`).
pub(crate) const MIN_DEVIATION: f64 = 0.1;
/// At most this many of the most extreme tokens are combined (Robinson suggests ~150).
pub(crate) const MAX_TOKENS: usize = 150;

/// Robinson's f(w) for a token seen in `t.spam` of `messages.spam` spam and `t.ham` of
/// `messages.ham` ham messages:
///
/// ```text
/// p(w) = (b / nbad) / (b / nbad + g / ngood)
/// f(w) = (s·x + n·p(w)) / (s + n)        n = b + g
/// ```
///
/// `None` when the token was never seen (f(w) would be exactly `x`).
pub(crate) fn token_probability(t: TokenCounts, messages: TokenCounts) -> Option<f64> {
    let n = t.spam + t.ham;
    if n == 0 {
        return None;
    }
    // A class with no messages contributes no rate; max(1) avoids 0/0 without changing a count.
    let bad = t.spam as f64 / messages.spam.max(1) as f64;
    let good = t.ham as f64 / messages.ham.max(1) as f64;
    let p = if bad + good == 0.0 {
        ASSUMED
    } else {
        bad / (bad + good)
    };
    let n = n as f64;
    Some((STRENGTH * ASSUMED + n * p) / (STRENGTH + n))
}

/// The chi-square survival function Q(χ², v) = P(X ≥ χ²) for even `v`:
/// `e^(−m) · Σ_{i<v/2} m^i / i!` with `m = χ²/2` (SpamBayes `chi2Q`).
pub(crate) fn chi2_q(chi2: f64, v: usize) -> f64 {
    let m = chi2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..v / 2 {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

/// Robinson's indicator I ∈ [0, 1] (1 = spam) from the f(w) of the tokens used:
///
/// ```text
/// H = Q(−2 ln Π f(w),       2n)
/// S = Q(−2 ln Π (1 − f(w)), 2n)
/// I = (1 + H − S) / 2
/// ```
///
/// 0.5 (no opinion) without tokens. Sums of logarithms instead of products avoid underflow.
pub(crate) fn combine(probabilities: &[f64]) -> f64 {
    if probabilities.is_empty() {
        return 0.5;
    }
    // f(w) is never exactly 0 or 1 with s > 0, but clamp so ln() stays finite for any input.
    let clamp = |f: f64| f.clamp(1e-9, 1.0 - 1e-9);
    let ln_f: f64 = probabilities.iter().map(|&f| clamp(f).ln()).sum();
    let ln_not_f: f64 = probabilities.iter().map(|&f| (1.0 - clamp(f)).ln()).sum();
    let v = 2 * probabilities.len();
    let h = chi2_q(-2.0 * ln_f, v);
    let s = chi2_q(-2.0 * ln_not_f, v);
    (1.0 + h - s) / 2.0
}

/// Keeps the f(w) with |f(w) − 0.5| ≥ [`MIN_DEVIATION`], most extreme first, at most
/// [`MAX_TOKENS`]; ties keep their input order, so the result is deterministic.
pub(crate) fn most_interesting(mut probabilities: Vec<f64>) -> Vec<f64> {
    probabilities.retain(|f| (f - ASSUMED).abs() >= MIN_DEVIATION);
    probabilities.sort_by(|a, b| (b - ASSUMED).abs().total_cmp(&(a - ASSUMED).abs()));
    probabilities.truncate(MAX_TOKENS);
    probabilities
}

/// The classifier's probability that a message is spam, from its tokens' counts in the pooled
/// (site-wide + account) data; `None` when fewer than `min_messages` of either class were learned.
pub(crate) fn spam_probability(
    tokens: &[TokenCounts],
    messages: TokenCounts,
    min_messages: u64,
) -> Option<f64> {
    if messages.spam < min_messages || messages.ham < min_messages {
        return None;
    }
    let f: Vec<f64> = tokens
        .iter()
        .filter_map(|&t| token_probability(t, messages))
        .collect();
    Some(combine(&most_interesting(f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(spam: u64, ham: u64) -> TokenCounts {
        TokenCounts { spam, ham }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-4, "{a} != {b}");
    }

    #[test]
    fn robinson_f_matches_hand_computed_values() {
        // p = 0.3 / (0.3 + 0.1) = 0.75; f = (0.5 + 4·0.75) / 5 = 0.7
        close(token_probability(tc(3, 1), tc(10, 10)).expect("seen"), 0.7);
        // Only in spam, once: p = 1; f = (0.5 + 1) / 2 = 0.75 — one sighting is weak evidence.
        close(token_probability(tc(1, 0), tc(10, 10)).expect("seen"), 0.75);
        // Rates, not counts: 2 of 100 spam vs 2 of 10 ham → p = 0.02 / 0.22; f = (0.5 + 4p) / 5.
        close(
            token_probability(tc(2, 2), tc(100, 10)).expect("seen"),
            (0.5 + 4.0 * (0.02 / 0.22)) / 5.0,
        );
        assert_eq!(token_probability(tc(0, 0), tc(10, 10)), None);
    }

    #[test]
    fn chi2_q_matches_closed_forms() {
        // v = 2: Q = e^(−m); v = 4: Q = e^(−m)(1 + m).
        close(chi2_q(2.0, 2), (-1.0f64).exp());
        close(chi2_q(3.0, 4), (-1.5f64).exp() * 2.5);
        close(chi2_q(0.0, 10), 1.0);
        assert!(chi2_q(2000.0, 300) < 1e-100);
    }

    #[test]
    fn fisher_combining_matches_hand_computed_values() {
        // One token: H = f, S = 1 − f, so I = f.
        close(combine(&[0.9]), 0.9);
        // Two tokens 0.9 and 0.8: Π f = 0.72 → m = −ln 0.72 = 0.32850, H = 0.72 · 1.32850 = 0.95652;
        // Π (1 − f) = 0.02 → m = 3.91202, S = 0.02 · 4.91202 = 0.09824; I = (1 + H − S) / 2 = 0.92914.
        close(combine(&[0.9, 0.8]), 0.92914);
        // Symmetric evidence cancels out.
        close(combine(&[0.99, 0.01]), 0.5);
        close(combine(&[]), 0.5);
    }

    #[test]
    fn only_extreme_tokens_are_used_most_extreme_first() {
        let mut many = vec![0.55, 0.45, 0.6, 0.1, 0.95];
        many.extend(std::iter::repeat_n(0.8, 200));
        let kept = most_interesting(many);
        assert_eq!(kept.len(), MAX_TOKENS);
        assert_eq!(kept[..2], [0.95, 0.1]);
        assert!(!kept.contains(&0.55) && !kept.contains(&0.45));
    }

    #[test]
    fn the_classifier_abstains_until_enough_mail_was_learned() {
        assert_eq!(spam_probability(&[tc(5, 0)], tc(19, 30), 20), None);
        let p =
            spam_probability(&[tc(15, 0), tc(12, 1), tc(0, 0)], tc(20, 20), 20).expect("trained");
        assert!(p > 0.95, "{p}");
        let p = spam_probability(&[tc(0, 15), tc(1, 12)], tc(20, 20), 20).expect("trained");
        assert!(p < 0.05, "{p}");
    }
}
