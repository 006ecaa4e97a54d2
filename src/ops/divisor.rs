//! Division by a divisor fixed for a whole pass, with the bits of `/` and without the divider.
//!
//! A divider is slow: on an Intel Xeon (Emerald Rapids) one 256-bit division of f64 issues every
//! 8 cycles, against two fused multiply-adds every cycle. Adam divides each moment by its bias
//! correction 1 − βᵗ, the same number for the whole matrix, and in f64 those divisions were
//! most of its update. Multiplying by a rounded reciprocal instead would change the last bit of
//! some quotients, and so every output of every script after it. [`Divisor`] gives the
//! correctly rounded quotient, the bits of `a / b`, from the reciprocal y = RN(1/b) and fused
//! multiply-adds (whether that beats the divider depends on the CPU: Adam times both ways once
//! and keeps the faster, see `optim::Quotients`):
//!
//! ```text
//! q₀ = RN(a·y)
//! q₁ = RN(q₀ + RN(a − b·q₀)·y)     (each RN(u·v + w) one fma)
//! q  = RN(q₁ + RN(a − b·q₁)·y)
//! ```
//!
//! Why q = RN(a/b), with p the precision (24 or 53 bits), u = 2⁻ᵖ, and nothing under- or
//! overflowing:
//! 1. y is within ½ ulp of 1/b, so a·y is within ulp(a/b) of a/b, and q₀ within 2 ulp(a/b).
//! 2. The residual a − b·q₀ is rounded once (relative error ≤ u) and multiplied by y (relative
//!    error ≤ u), so q₀ + RN(a − b·q₀)·y = a/b + (a/b − q₀)·(δ₁ + δ₂ + δ₁δ₂), within 5u·ulp(a/b)
//!    of a/b: q₁ is within ½ ulp + 5u ulp, so within one ulp of a/b.
//! 3. Markstein's theorem (IBM J. Res. Dev. 34(1), 1990; Muller et al., *Handbook of
//!    Floating-Point Arithmetic*, "Markstein's theorem"): if y is within ½ ulp of 1/b and q₁
//!    within one ulp of a/b, then a − b·q₁ is exact and RN(q₁ + (a − b·q₁)·y) = RN(a/b).
//!
//! (One step from q₀ would need q₀ within one ulp, which the bound in 1 does not give.)
//!
//! Underflow is kept out by [`Divisor::least`]: below it the caller divides. Overflow needs no
//! test: if a step overflows, ±∞ or NaN runs through the remaining steps, so a finite q is
//! RN(a/b), and a / b = ±∞ never comes out finite. The tests check every f32 significand of a
//! against `/` for many divisors, at both ends of the range (the steps commute with scaling a
//! by a power of two, so a binade stands for the others), and the f64 quotients closest to
//! midpoints, where a wrong rounding would show.

use crate::tensor::Real;

/// A divisor b with its reciprocal, for quotients a / b bit for bit.
#[derive(Clone, Copy, Debug)]
pub struct Divisor<T> {
    b: T,
    y: T,
    least: T,
}

impl<T: Real> Divisor<T> {
    pub fn new(b: T) -> Self {
        // b within 2^±32 of 1, so y is normal; other divisors (zero, NaN, ±∞, subnormals among
        // them) are divided. Quotients of |a| ≥ 2^(emin + p + 2)·max(1, |b|) stay normal, and
        // so do the residuals a − b·q, of the order of ulp(a): the last one is exact.
        let wide = T::lit(2f64.powi(32));
        let near_one = b.abs() >= wide.recip() && b.abs() <= wide;
        let smallest = T::min_positive_value() / T::epsilon() * T::lit(8.0);
        Divisor {
            b,
            y: T::one() / b,
            least: if near_one {
                smallest * b.abs().max(T::one())
            } else {
                T::infinity()
            },
        }
    }

    /// The divisor b.
    pub fn b(&self) -> T {
        self.b
    }

    /// The least |a| for which [`Divisor::quotient`] holds (∞ if b is too far from 1).
    pub fn least(&self) -> T {
        self.least
    }

    /// a / b, bit for bit, if |a| ≥ [`Divisor::least`] and the result is finite; if a / b is
    /// ±∞ or NaN, so is the result. Below the least |a| (zeros among them: −0 / b gives +0),
    /// only close to a / b.
    #[inline(always)]
    pub fn quotient(&self, a: T) -> T {
        let (b, y) = (self.b, self.y);
        let q0 = a * y;
        let q1 = (-q0).mul_add(b, a).mul_add(y, q0);
        (-q1).mul_add(b, a).mul_add(y, q1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quotients of a by b from [`Divisor::quotient`], for |a| ≥ its least.
    fn quotients<T: Real>(b: T, a: &[T]) -> Vec<T> {
        let d = Divisor::new(b);
        assert!(a.iter().all(|&a| a.abs() >= d.least()), "{b} and a");
        a.iter().map(|&a| d.quotient(a)).collect()
    }

    /// The promise: a finite quotient is a / b, and a / b = ±∞ or NaN never comes out finite.
    fn assert_kept(q: f32, a: f32, b: f32) {
        let want = a / b;
        if q.is_finite() {
            assert_eq!(q.to_bits(), want.to_bits(), "{a:e} / {b:e}");
        }
        assert!(want.is_finite() || !q.is_finite(), "{a:e} / {b:e}: {q:e}");
    }

    /// Every a with a significand of 24 bits in [1, 2), in [−2, −1), in the lowest binade the
    /// least |a| allows and in the highest binade of f32 (where quotients by b < 1 overflow),
    /// against `/`.
    fn every_significand_f32(b: f32) {
        let least = Divisor::new(b).least();
        let low = (-149..).find(|&k| 2f32.powi(k) >= least).unwrap();
        for scale in [1.0, -1.0, 2f32.powi(low), -(2f32.powi(127))] {
            let a: Vec<f32> = (0..1u32 << 23)
                .map(|s| scale * f32::from_bits(0x3f80_0000 | s))
                .collect();
            let q = quotients(b, &a);
            for (q, a) in q.into_iter().zip(a) {
                assert_kept(q, a, b);
            }
        }
    }

    /// The divisors of Adam's bias corrections, 1 − βᵗ in f32 for the default β₁ and β₂, and
    /// divisors whose reciprocal is hardest to round: significands next to 1 and 2.
    #[test]
    fn f32_quotients_are_those_of_division_for_every_significand() {
        let mut divisors: Vec<f32> = (1..=12)
            .flat_map(|t| [1.0 - 0.9f64.powi(t), 1.0 - 0.999f64.powi(t)])
            .map(|c| c as f32)
            .collect();
        divisors.extend([
            1.0,
            3.0,
            0.1,
            1e-7,
            7e8,
            f32::from_bits(0x3f80_0001),
            f32::from_bits(0x3fff_ffff),
            f32::from_bits(0x3fff_fffe),
            -f32::from_bits(0x3fc0_0001),
        ]);
        crate::par::map(divisors, every_significand_f32);
    }

    /// The hardest f64 quotients: a/b within 2⁻⁵² ulp of a midpoint between two f64 values,
    /// where one wrong rounding shows. For an odd 53-bit significand d of b and an odd 54-bit
    /// M (a midpoint, M·2⁻⁵³ in [1, 2)), d·M ≡ ±1 modulo 2ˢ makes a = (d·M ∓ 1)·2⁻ˢ a 53-bit
    /// integer, and a/d = (M ∓ 1/d)·2⁻ˢ lies 1/d of a unit off the midpoint.
    #[test]
    fn f64_quotients_next_to_midpoints_are_those_of_division() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut hard = 0;
        while hard < 40_000 {
            let d = (1u64 << 52) | (next() & ((1 << 52) - 1)) | 1;
            // d⁻¹ modulo 2⁶⁴ by Newton's iteration (d is odd)
            let inv = (0..6).fold(d, |x, _| {
                x.wrapping_mul(2u64.wrapping_sub(d.wrapping_mul(x)))
            });
            for rho in [1i128, -1] {
                for s in 52..=54u32 {
                    let mask = (1u64 << s) - 1;
                    let root = if rho == 1 { inv } else { inv.wrapping_neg() } & mask;
                    // the odd M ≡ ±d⁻¹ (mod 2ˢ) in [2⁵³, 2⁵⁴)
                    let m = (1u64 << 53) + ((root.wrapping_sub(1 << 53)) & mask);
                    if m >= 1 << 54 || m.is_multiple_of(2) {
                        continue;
                    }
                    let p = d as u128 * m as u128;
                    if 128 - p.leading_zeros() != 53 + s {
                        continue;
                    }
                    let a = ((p as i128 - rho) >> s) as u64;
                    assert_eq!(((a as u128) << s) as i128 + rho, p as i128);
                    let (a, b) = (a as f64, d as f64);
                    assert_eq!(a.fract(), 0.0, "a has 53 bits");
                    for scale in [1.0, 0.5f64.powi(60), 2f64.powi(70), -3.0 * 0.25] {
                        let (a, b) = (a * scale * 2f64.powi(-52), b * 2f64.powi(-52));
                        let q = quotients(b, &[a])[0];
                        assert_eq!(q.to_bits(), (a / b).to_bits(), "{a:e} / {b:e}");
                    }
                    hard += 1;
                }
            }
        }
    }

    /// Adam's second moments in f32 reach 1e-20 and below (squares of small gradients): the
    /// least |a| must be below them, and ∞ for divisors far from 1.
    #[test]
    fn the_least_dividend_is_small_enough_for_moments() {
        for b in [1.0f32, 0.1, 1e-3, 1.0 - 0.999f32, 3.0] {
            let least = Divisor::new(b).least();
            assert!(
                least <= 1e-29 && least > f32::MIN_POSITIVE,
                "{b}: {least:e}"
            );
        }
        for b in [0.0f32, 1e-20, 1e20, f32::NAN, f32::INFINITY] {
            assert_eq!(Divisor::new(b).least(), f32::INFINITY, "{b}");
        }
    }

    /// Below the least |a| the steps do go wrong: residuals fall among the subnormal numbers
    /// and lose bits. So callers must divide there.
    #[test]
    fn below_the_least_quotients_can_be_wrong() {
        let b = 0.1f32;
        let d = Divisor::new(b);
        let wrong = (1u32..1 << 23)
            .map(f32::from_bits)
            .filter(|&a| d.quotient(a).to_bits() != (a / b).to_bits())
            .count();
        assert!(wrong > 1000, "{wrong}");
    }
}
