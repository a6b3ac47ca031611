import CBLAS
import Foundation

/// OpenBLAS kernel selection. Debian's OpenBLAS picks its kernels when the library loads; on
/// CPUs it does not recognise (some virtualised Xeons report a generic model) it falls back to
/// the SSE3 "Prescott" kernels, 4–5× slower, and on AMD CPUs with AVX-512 it picks AVX2 ones.
/// Before the first BLAS call we set `OPENBLAS_CORETYPE` from the CPU's flags and ask OpenBLAS
/// to detect its kernels again.
public enum BLASCore {
    /// The kernel family OpenBLAS chose ("Haswell", "SkylakeX", "Prescott", …).
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// `recommendedCoreType()` for this CPU, read once.
    public static let cpuCoreType = recommendedCoreType()

    /// The best kernel family for this CPU from its /proc/cpuinfo flags, or nil when unknown.
    public static func recommendedCoreType(cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) -> String? {
        guard let text = cpuinfo,
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    /// The override to apply, when OpenBLAS chose kernels below what this CPU runs and the user
    /// has not chosen a core type.
    public static func neededOverride(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil else { return nil }
        return betterCoreType(than: coreName, recommended: cpuCoreType)
    }

    /// `recommended` when `chosen` is a generic fallback, or an AVX2 family on a CPU with
    /// AVX-512. OpenBLAS 0.3.21 maps AMD Zen 4 and Zen 5 to "Zen" / "Haswell"; on a Zen 5 the
    /// SkylakeX kernels ran sgemm at 1.8× the Haswell ones (365 against 200 GFLOP/s, 2 threads).
    public static func betterCoreType(than chosen: String, recommended: String?) -> String? {
        guard let recommended, recommended != chosen else { return nil }
        let generic: Set<String> = ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Banias", "unknown"]
        let avx512: Set<String> = ["SkylakeX", "Cooperlake", "SapphireRapids"]
        if generic.contains(chosen) { return recommended }
        if recommended == "SkylakeX", !avx512.contains(chosen) { return recommended }
        return nil
    }

    /// A hint when the user's `OPENBLAS_CORETYPE` pins kernels below what this CPU runs (some
    /// environments pin "Haswell" on AVX-512 CPUs); nil otherwise. The choice is respected.
    public static func pinnedKernelHint(environment: [String: String] = ProcessInfo.processInfo.environment,
                                        chosen: String = coreName,
                                        recommended: String? = cpuCoreType) -> String? {
        guard let pinned = environment["OPENBLAS_CORETYPE"],
              let better = betterCoreType(than: chosen, recommended: recommended) else { return nil }
        return "OPENBLAS_CORETYPE=\(pinned) is set, so OpenBLAS runs its \(chosen) kernels; this CPU also runs \(better), whose GEMMs can be about twice as fast (unset the variable to let OpenBLAS choose)"
    }

    /// Switches OpenBLAS to the kernels this CPU supports when it chose slower ones, and
    /// shortens its workers' spin time (unless the user set either variable).
    /// Must run before any BLAS call is in flight; `BLAS.sgemm` calls it once, first.
    static func selectBestKernels() { _ = selected }

    /// Spin time of idle OpenBLAS workers, as log2 cycles. OpenBLAS's default (2^28 cycles,
    /// about 0.1 s) keeps its workers yielding long after a GEMM, fighting our own kernel threads
    /// for the cores; measured on the ViT-block benchmark, 2^8 is ~20% faster end to end.
    public static let defaultThreadTimeout = "8"

    private static let selected: Bool = {
        let environment = ProcessInfo.processInfo.environment
        let core = neededOverride(environment: environment)
        let timeout = environment["OPENBLAS_THREAD_TIMEOUT"] == nil
        guard core != nil || timeout else { return false }
        if let core { setenv("OPENBLAS_CORETYPE", core, 1) }
        if timeout { setenv("OPENBLAS_THREAD_TIMEOUT", defaultThreadTimeout, 1) }
        openblas_read_env()
        _ = blas_thread_shutdown_()  // workers restart on the next parallel call, with the new timeout
        if core != nil {
            gotoblas_dynamic_quit()
            gotoblas_dynamic_init()
        }
        return true
    }()
}
