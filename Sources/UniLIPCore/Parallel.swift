import CBLAS
import Dispatch
import Foundation

/// Thread settings for element-wise kernels and for OpenBLAS.
///
/// Rule: a parallel loop never calls BLAS. Kernels either split their own work over
/// `Parallel.threads` or hand one large GEMM to `BLAS.sgemm`, which runs it on OpenBLAS's
/// threads (the same count) or splits it over ours with OpenBLAS held to one thread.
public enum Parallel {
    nonisolated(unsafe) private static var _threads = physicalCores

    /// The number of threads used by kernels and by OpenBLAS.
    public static var threads: Int { _threads }

    /// Sets the thread count for kernels and OpenBLAS (at least 1).
    public static func setThreads(_ n: Int) {
        _threads = max(1, n)
        BLASCore.selectBestKernels()
        openblas_set_num_threads(Int32(_threads))
    }

    /// Physical cores, from /proc/cpuinfo's (physical id, core id) pairs where present.
    public static let physicalCores: Int = {
        let logical = ProcessInfo.processInfo.activeProcessorCount
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else {
            return logical
        }
        var pairs = Set<String>()
        var physical = ""
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard parts.count == 2 else { continue }
            if parts[0] == "physical id" { physical = parts[1] }
            if parts[0] == "core id" { pairs.insert(physical + "/" + parts[1]) }
        }
        return pairs.isEmpty ? logical : min(pairs.count, logical)
    }()

    /// Splits `0..<count` into contiguous chunks of at least `grain` items and runs `body` on
    /// each, across `threads` threads. Runs inline when one chunk suffices.
    @inlinable
    public static func forRange(_ count: Int, grain: Int = 1,
                                _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let maxChunks = max(1, count / max(grain, 1))
        let chunks = min(threads, maxChunks)
        if chunks <= 1 {
            body(0..<count)
            return
        }
        let per = (count + chunks - 1) / chunks
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = c * per
                let hi = min(count, lo + per)
                if lo < hi { body(lo..<hi) }
            }
        }
    }

    /// `body(i)` for i in 0..<count, split over the threads like `forRange`; results in order.
    /// For independent items of comparable cost (rendering a batch of scenes).
    public static func map<T>(_ count: Int, _ body: (Int) -> T) -> [T] {
        guard count > 1, threads > 1 else { return (0..<count).map(body) }
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            guard let base = buffer.baseAddress else { return }
            forRange(count) { r in for i in r { (base + i).initialize(to: body(i)) } }
            initialized = count
        }
    }
}
