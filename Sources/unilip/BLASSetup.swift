import Foundation
import UniLIPCore
#if canImport(Glibc)
import Glibc
#endif

enum BLASSetup {
    /// Re-executes this program with OPENBLAS_CORETYPE set when OpenBLAS loaded its generic
    /// kernels on a CPU with AVX2/AVX-512 (see `BLASCore`). Does nothing otherwise, or when the
    /// user set the variable.
    static func reexecWithBestKernelsIfNeeded() {
        guard let core = BLASCore.neededOverride() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        let args = CommandLine.arguments
        var cArgs = args.map { strdup($0) }
        cArgs.append(nil)
        execv("/proc/self/exe", &cArgs)
        // execv returned: keep running with the kernels we have.
        for p in cArgs { free(p) }
    }
}
