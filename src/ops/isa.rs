//! The instruction sets imgx's own vector code is compiled for (`gemm`'s products, `tile`'s
//! transposes), and which of them this CPU has. Each such function is compiled once per set
//! with `#[target_feature]` and chosen at run time, so one binary runs everywhere.

/// An instruction set the vector code is compiled for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Isa {
    /// AVX-512F: 32 registers of 512 bits.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX2 with FMA: 16 registers of 256 bits.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// Neither, or another architecture: portable code (matrixmultiply for products, entry
    /// by entry for transposes).
    Portable,
}

/// The best this CPU has (looked up once).
pub fn best() -> Isa {
    static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *BEST.get_or_init(|| available()[0])
}

/// All this CPU has, the best first (the tests run each).
pub fn available() -> Vec<Isa> {
    let mut all = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") {
            all.push(Isa::Avx512);
        }
        if has!("avx2") && has!("fma") {
            all.push(Isa::Avx2);
        }
    }
    all.push(Isa::Portable);
    all
}
