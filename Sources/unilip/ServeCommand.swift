import ArgumentParser
import Foundation
import Logging
import UniLIPServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serves a web page and a JSON API that ask about, reconstruct, edit and generate images.",
        discussion: "Prints `listening on http://HOST:PORT` as the first line on stdout once bound. See README \"Web server\" for the API.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Address to bind (loopback by default; 0.0.0.0 exposes the server).") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port).") var port = 8080
    @Option(help: "Folder holding internvl-tiny, unilip-tiny and unilip-gen-tiny (default: the shipped Models/).") var models: String?
    @Option(help: "Jobs kept in memory, finished ones included (the oldest finished are dropped first).") var maxJobs = 64
    @Option(help: "Jobs that may wait behind the running one; more get 429.") var maxQueue = 8
    @Option(help: "Largest request body, in MB.") var maxBodyMb = 8
    @Option(help: "Longest side of an uploaded image, in pixels.") var maxImageSide = 1024
    @Option(help: "Longest question, instruction or prompt, in characters.") var maxText = 500
    @Option(help: "Longest side reconstructed as is; larger images are scaled down first (the work grows with the square of the pixel count).")
    var maxReconstructSide = 256

    var limits: ServerLimits {
        var l = ServerLimits()
        l.maxJobs = maxJobs
        l.maxQueue = maxQueue
        l.maxBodyBytes = maxBodyMb << 20
        l.maxImageSide = maxImageSide
        l.maxTextLength = maxText
        return l
    }

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535 (got \(port))") }
        guard (1...1024).contains(maxBodyMb) else { throw ValidationError("--max-body-mb must be between 1 and 1024 (got \(maxBodyMb))") }
        if let problem = limits.problem() { throw ValidationError(problem) }
        guard maxReconstructSide >= 16 else { throw ValidationError("--max-reconstruct-side must be at least 16 (got \(maxReconstructSide))") }
    }

    func run() async throws {
        let logger = global.apply()
        let folders: ModelFolders
        if let models {
            folders = ModelFolders(root: models)
        } else {
            folders = ModelFolders(understanding: try ModelLocator.locate("internvl-tiny", explicit: nil),
                                   autoencoder: try ModelLocator.locate("unilip-tiny", explicit: nil),
                                   generation: try ModelLocator.locate("unilip-gen-tiny", explicit: nil))
        }
        let start = Date()
        let backend = try ModelBackend(folders: folders, maxReconstructSide: maxReconstructSide)
        logger.info("models loaded in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        let server = WebServer(configuration: ServerConfiguration(host: host, port: port, limits: limits), backend: backend)
        var serverLogger = Logger(label: "unilip.serve")
        serverLogger.logLevel = global.logLevel == .info ? .notice : global.logLevel
        try await server.application(logger: serverLogger) { url in
            print("listening on \(url)")
            fflush(stdout)
        }.runService()
    }
}
