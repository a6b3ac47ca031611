import ArgumentParser
import Foundation
import UniLIPCore

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks (build with -c release).",
        subcommands: [BenchCore.self, BenchGeneration.self, BenchTraining.self])
}

struct BenchCore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "core",
        abstract: "sgemm GFLOP/s and forward+backward times of the core workloads.")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Timed repeats per workload; the median is reported.")
    var repeats: Int = 7

    @Option(help: "Also write the results as JSON to this path.")
    var json: String?

    @Option(help: "Run only the workloads whose names contain this text (e.g. vit, conv, attention, sgemm).")
    var only: String?

    func run() throws {
        _ = global.apply()
        var results: [BenchResult] = []
        print("threads: \(Parallel.threads), OpenBLAS kernels: \(BLASCore.coreName)")
        for n in [256, 512, 1024] where only.map({ "sgemm".contains($0) }) ?? true {
            for r in CoreWorkloads.sgemm(n: n, repeats: repeats) {
                results.append(r)
                print(r.line)
            }
        }
        for r in CoreWorkloads.layerWorkloads(repeats: repeats, only: only) {
            results.append(r)
            print(r.line)
        }
        if let json { try BenchResult.writeJSON(results, to: json) }
    }
}

struct BenchResult {
    let name: String
    let value: Double
    let unit: String
    var line: String { "\(name): \(String(format: "%.2f", value)) \(unit)" }

    /// Writes results with the thread count and OpenBLAS kernel family, atomically (the layout
    /// Tools/reference/performance.py reads).
    static func writeJSON(_ results: [BenchResult], to path: String) throws {
        let object: [String: Any] = [
            "threads": Parallel.threads,
            "blas_core": BLASCore.coreName,
            "results": results.map { ["name": $0.name, "value": $0.value, "unit": $0.unit] },
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: path)
    }
}

/// Median wall time in milliseconds of `body` over `repeats` runs, after one warm-up run.
func medianMilliseconds(repeats: Int, _ body: () -> Void) -> Double {
    body()
    var times: [Double] = []
    for _ in 0..<max(1, repeats) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
    }
    times.sort()
    // UNILIP_BENCH_STAT=min: the fastest run, steadier than the median on a busy machine when
    // comparing two builds.
    if ProcessInfo.processInfo.environment["UNILIP_BENCH_STAT"] == "min" { return times[0] }
    return times[times.count / 2]
}
