/// Small vector loops over raw pointers, written with explicit SIMD so reductions vectorise
/// (the compiler does not reassociate float sums on its own).
enum SIMDLoops {
    typealias V = SIMD8<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// y[i] += a · x[i] for i in 0..<n.
    @inline(__always)
    static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let av = V(repeating: a)
        var i = 0
        while i + 16 <= n {
            store(load(y + i).addingProduct(av, load(x + i)), y + i)
            store(load(y + i + 8).addingProduct(av, load(x + i + 8)), y + i + 8)
            i += 16
        }
        if i + 8 <= n {
            store(load(y + i).addingProduct(av, load(x + i)), y + i)
            i += 8
        }
        while i < n {
            y[i] += a * x[i]
            i += 1
        }
    }

    /// Σ a[i] · b[i] for i in 0..<n.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = V(), s1 = V()
        var i = 0
        while i + 16 <= n {
            s0.addProduct(load(a + i), load(b + i))
            s1.addProduct(load(a + i + 8), load(b + i + 8))
            i += 16
        }
        if i + 8 <= n {
            s0.addProduct(load(a + i), load(b + i))
            i += 8
        }
        var s = (s0 + s1).sum()
        while i < n {
            s += a[i] * b[i]
            i += 1
        }
        return s
    }

    /// Σ a[i] for i in 0..<n.
    @inline(__always)
    static func sum(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0 = V(), s1 = V()
        var i = 0
        while i + 16 <= n {
            s0 += load(a + i)
            s1 += load(a + i + 8)
            i += 16
        }
        if i + 8 <= n {
            s0 += load(a + i)
            i += 8
        }
        var s = (s0 + s1).sum()
        while i < n {
            s += a[i]
            i += 1
        }
        return s
    }

    /// y[i] += x[i] for i in 0..<n.
    @inline(__always)
    static func add(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 8 <= n {
            store(load(y + i) + load(x + i), y + i)
            i += 8
        }
        while i < n {
            y[i] += x[i]
            i += 1
        }
    }
}
