import CBLAS
import Foundation

/// OpenBLAS kernel selection. Debian's OpenBLAS picks its kernels when the library loads; on
/// CPUs it does not recognise (some virtualised Xeons report a generic model) it falls back to
/// the SSE3 "Prescott" kernels, 4–5× slower. Before the first BLAS call we set
/// `OPENBLAS_CORETYPE` from the CPU's flags and ask OpenBLAS to detect its kernels again.
public enum BLASCore {
    /// The kernel family OpenBLAS chose ("Haswell", "SkylakeX", "Prescott", …).
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// The best kernel family for this CPU from its /proc/cpuinfo flags, or nil when unknown.
    public static func recommendedCoreType(cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) -> String? {
        guard let text = cpuinfo,
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(flags.contains) { return "Haswell" }
        return nil
    }

    /// The override to apply, when OpenBLAS fell back to generic kernels on a CPU that has better
    /// ones and the user has not chosen a core type.
    public static func neededOverride(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil else { return nil }
        let generic: Set<String> = ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Banias", "unknown"]
        guard generic.contains(coreName), let better = recommendedCoreType() else { return nil }
        return better
    }

    /// Switches OpenBLAS to the kernels this CPU supports when it fell back to generic ones.
    /// Must run before any BLAS call is in flight; `BLAS.sgemm` calls it once, first.
    static func selectBestKernels() { _ = selected }

    private static let selected: Bool = {
        guard let core = neededOverride() else { return false }
        setenv("OPENBLAS_CORETYPE", core, 1)
        gotoblas_dynamic_quit()
        gotoblas_dynamic_init()
        return true
    }()
}
