import Foundation

/// Fréchet distance between two Gaussians fitted to feature sets (the FID formula):
/// ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½, with sample covariances (n − 1).
/// Computed in Double with symmetric eigendecompositions (cyclic Jacobi), so no LAPACK is needed.
public enum FrechetDistance {
    /// Mean and sample covariance of `rows` feature vectors of dimension `dim`.
    public static func statistics(_ features: [Double], dim: Int) -> (mean: [Double], cov: [Double]) {
        precondition(dim > 0 && features.count % dim == 0, "FrechetDistance: \(features.count) values are not rows of \(dim)")
        let n = features.count / dim
        precondition(n >= 2, "FrechetDistance: needs at least 2 samples, got \(n)")
        var mean = [Double](repeating: 0, count: dim)
        for r in 0..<n { for j in 0..<dim { mean[j] += features[r * dim + j] } }
        for j in 0..<dim { mean[j] /= Double(n) }
        var cov = [Double](repeating: 0, count: dim * dim)
        var centred = [Double](repeating: 0, count: dim)
        for r in 0..<n {
            for j in 0..<dim { centred[j] = features[r * dim + j] - mean[j] }
            for a in 0..<dim {
                let ca = centred[a]
                for b in a..<dim { cov[a * dim + b] += ca * centred[b] }
            }
        }
        for a in 0..<dim {
            for b in a..<dim {
                cov[a * dim + b] /= Double(n - 1)
                cov[b * dim + a] = cov[a * dim + b]
            }
        }
        return (mean, cov)
    }

    public static func distance(_ a: [Double], _ b: [Double], dim: Int) -> Double {
        let (m1, s1) = statistics(a, dim: dim)
        let (m2, s2) = statistics(b, dim: dim)
        return distance(mean1: m1, cov1: s1, mean2: m2, cov2: s2)
    }

    public static func distance(mean1: [Double], cov1: [Double], mean2: [Double], cov2: [Double]) -> Double {
        let d = mean1.count
        var meanTerm = 0.0
        for j in 0..<d { meanTerm += (mean1[j] - mean2[j]) * (mean1[j] - mean2[j]) }
        var traces = 0.0
        for j in 0..<d { traces += cov1[j * d + j] + cov2[j * d + j] }
        let root1 = symmetricSqrt(cov1, dim: d)
        let inner = multiply(multiply(root1, cov2, d), root1, d)
        let eigen = symmetricEigen(inner, dim: d).values
        let crossTrace = eigen.reduce(0) { $0 + Swift.max($1, 0).squareRoot() }
        return meanTerm + traces - 2 * crossTrace
    }

    static func multiply(_ a: [Double], _ b: [Double], _ d: Int) -> [Double] {
        var out = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for k in 0..<d {
                let aik = a[i * d + k]
                if aik == 0 { continue }
                for j in 0..<d { out[i * d + j] += aik * b[k * d + j] }
            }
        }
        return out
    }

    /// The PSD square root V diag(√max(λ, 0)) Vᵀ of a symmetric matrix.
    static func symmetricSqrt(_ m: [Double], dim d: Int) -> [Double] {
        let (values, vectors) = symmetricEigen(m, dim: d)
        var out = [Double](repeating: 0, count: d * d)
        for k in 0..<d {
            let s = Swift.max(values[k], 0).squareRoot()
            if s == 0 { continue }
            for i in 0..<d {
                let vik = vectors[i * d + k] * s
                for j in 0..<d { out[i * d + j] += vik * vectors[j * d + k] }
            }
        }
        return out
    }

    /// Eigenvalues and eigenvectors (columns of `vectors`, row-major) of a symmetric matrix by
    /// cyclic Jacobi rotations, until the off-diagonal mass is negligible.
    static func symmetricEigen(_ m: [Double], dim d: Int) -> (values: [Double], vectors: [Double]) {
        var a = m
        var v = [Double](repeating: 0, count: d * d)
        for i in 0..<d { v[i * d + i] = 1 }
        var scale = 0.0
        for x in a { scale += x * x }
        let tolerance = 1e-24 * Swift.max(scale, 1e-300)
        for _ in 0..<100 {
            var off = 0.0
            for p in 0..<d { for q in (p + 1)..<d { off += a[p * d + q] * a[p * d + q] } }
            if off <= tolerance { break }
            for p in 0..<(d - 1) {
                for q in (p + 1)..<d {
                    let apq = a[p * d + q]
                    if abs(apq) < 1e-300 { continue }
                    let theta = (a[q * d + q] - a[p * d + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<d {
                        let akp = a[k * d + p], akq = a[k * d + q]
                        a[k * d + p] = c * akp - s * akq
                        a[k * d + q] = s * akp + c * akq
                    }
                    for k in 0..<d {
                        let apk = a[p * d + k], aqk = a[q * d + k]
                        a[p * d + k] = c * apk - s * aqk
                        a[q * d + k] = s * apk + c * aqk
                    }
                    for k in 0..<d {
                        let vkp = v[k * d + p], vkq = v[k * d + q]
                        v[k * d + p] = c * vkp - s * vkq
                        v[k * d + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        return ((0..<d).map { a[$0 * d + $0] }, v)
    }
}
