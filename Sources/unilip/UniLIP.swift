import ArgumentParser
import Logging
import UniLIPCore

@main
struct UniLIPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unilip",
        abstract: "UniLIP on the CPU: one CLIP-style encoder for understanding, reconstruction, generation and editing.",
        subcommands: [DemoCommand.self, AskCommand.self, DescribeCommand.self, ReconstructCommand.self, EvalCommand.self, TrainCommand.self, WorldCommand.self,
                      ReportCommand.self,
                      WeightsCommand.self, BenchCommand.self,
                      GenerateCommand.self, EditCommand.self, ServeCommand.self])

}

/// Options every command shares: threads and logging.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Threads for kernels and OpenBLAS (default: physical cores).")
    var threads: Int = Parallel.physicalCores

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    /// Applies the thread count and starts logging to stderr. Call first in `run()`.
    func apply() -> Logger {
        Parallel.setThreads(threads)
        LoggingBootstrap.once(level: logLevel)
        var logger = Logger(label: "unilip")
        logger.logLevel = logLevel
        if let hint = BLASCore.pinnedKernelHint() { logger.notice("\(hint)") }
        return logger
    }

    func validate() throws {
        guard threads >= 1 && threads <= 256 else {
            throw ValidationError("--threads must be between 1 and 256 (got \(threads))")
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

enum LoggingBootstrap {
    nonisolated(unsafe) private static var done = false

    static func once(level: Logger.Level) {
        guard !done else { return }
        done = true
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
