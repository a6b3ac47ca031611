import Foundation
import Hummingbird
import Logging
import NIOCore
import UniLIPIO

/// The web server: the page at /, the JSON API under /api, jobs run by a `JobQueue`.
public final class WebServer: Sendable {
    public let configuration: ServerConfiguration
    public let queue: JobQueue
    public let samples: SampleScenes
    let modelNames: [String: String]

    /// Starts the job worker; the backend's models must already be loaded.
    public init(configuration: ServerConfiguration, backend: any JobBackend) {
        self.configuration = configuration
        queue = JobQueue(backend: backend, limits: configuration.limits)
        samples = SampleScenes(resolution: backend.sampleResolution)
        modelNames = backend.modelNames
        queue.start()
    }

    var limits: ServerLimits { configuration.limits }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: JSONErrorMiddleware())
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: Page.html)))
        }
        router.get("/api/health") { _, _ in self.health() }
        router.get("/api/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPI.json)))
        }
        router.get("/api/samples") { _, _ in self.sampleList() }
        router.get("/api/samples/:name") { _, context in try self.sampleImage(context.parameters.get("name") ?? "") }
        router.post("/api/jobs") { request, _ in try await self.submit(request) }
        router.get("/api/jobs/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let job = self.queue.snapshot(id: id) else { throw Self.unknownJob(id) }
            return JSON.response(JobView(job))
        }
        router.get("/api/jobs/:id/image.png") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let job = self.queue.snapshot(id: id) else { throw Self.unknownJob(id) }
            guard let png = self.queue.png(id: id) else {
                let finished = job.state == .done || job.state == .failed
                throw finished ? APIError(.notFound, "job \(id) made no image")
                               : APIError(.conflict, "job \(id) is still \(job.state.rawValue)")
            }
            return Response(status: .ok, headers: [.contentType: "image/png", .cacheControl: "no-store"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: png)))
        }
        return router
    }

    static func unknownJob(_ id: String) -> APIError {
        APIError(.notFound, "no job \"\(String(id.prefix(64)))\" (unknown, or finished long ago and dropped)")
    }

    func submit(_ request: Request) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limits.maxBodyBytes {
            throw Self.tooLarge(limits.maxBodyBytes)
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: limits.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw Self.tooLarge(limits.maxBodyBytes)
        }
        let job = try JobValidator(limits: limits, samples: samples).request(from: Data(buffer: body))
        switch queue.submit(job) {
        case .accepted(let snapshot):
            var response = JSON.response(JobView(snapshot), status: .accepted)
            response.headers[.location] = "/api/jobs/\(snapshot.id)"
            return response
        case .full(let waiting):
            throw APIError(.tooManyRequests,
                           "the queue is full (\(waiting) jobs waiting, limit \(limits.maxQueue)); try again in a few seconds",
                           headers: [.retryAfter: "\(limits.retryAfterSeconds)"])
        }
    }

    static func tooLarge(_ limit: Int) -> APIError {
        APIError(.contentTooLarge, "the request body is over the limit of \(limit) bytes (\(limit >> 20) MB)")
    }

    struct Health: Encodable {
        var status = "ok"
        var models: [String: String]
        var running: Int
        var queued: Int
        var max_queue: Int
        var kept_jobs: Int
        var max_jobs: Int
        var completed: Int
        var failed: Int
        var refused: Int
    }

    func health() -> Response {
        let s = queue.stats
        return JSON.response(Health(models: modelNames, running: s.running, queued: s.queued, max_queue: limits.maxQueue,
                                    kept_jobs: s.kept, max_jobs: limits.maxJobs, completed: s.completed, failed: s.failed,
                                    refused: s.refused))
    }

    struct Sample: Encodable {
        var name: String
        var url: String
        var caption: String
        var questions: [String]
        var edits: [String]
    }

    func sampleList() -> Response {
        let list = (0..<samples.listed).map { i -> Sample in
            let sample = samples.world.sample(.test, i)
            return Sample(name: "test-\(i)", url: "/api/samples/test-\(i).png", caption: sample.captions.first ?? "",
                          questions: sample.questions.prefix(4).map(\.question), edits: sample.edits.prefix(3).map(\.instruction))
        }
        return JSON.response(["samples": list])
    }

    func sampleImage(_ file: String) throws -> Response {
        let name = file.hasSuffix(".png") ? String(file.dropLast(4)) : file
        guard let image = samples.image(named: name) else {
            throw APIError(.notFound, "no sample \"\(String(name.prefix(40)))\": names are SPLIT-INDEX, e.g. test-3")
        }
        let png: Data
        do {
            png = try image.pngData()
        } catch {
            throw APIError(.internalServerError, "cannot encode the sample: \(error)")
        }
        return Response(status: .ok, headers: [.contentType: "image/png", .cacheControl: "max-age=3600"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: png)))
    }

    /// The application, bound to the configured host and port. `onListening` gets the bound URL.
    public func application(logger: Logger = Logger(label: "unilip.serve"),
                            onListening: @escaping @Sendable (String) -> Void = { _ in }) -> some ApplicationProtocol {
        let host = configuration.host
        return Application(
            router: router(),
            configuration: .init(address: .hostname(host, port: configuration.port), serverName: "unilip"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                let shown = host.contains(":") ? "[\(host)]" : host
                onListening("http://\(shown):\(port)")
            },
            logger: logger)
    }
}

/// Answers every error as {"error": "..."} with its status, unknown routes included.
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response()
        } catch let error as HTTPError {
            let text = error.status == .notFound ? "no such endpoint: \(request.method) \(request.uri.path)" : (error.body ?? error.status.reasonPhrase)
            return APIError(error.status, text).response()
        } catch is NIOTooManyBytesError {
            return APIError(.contentTooLarge, "the request body is too large").response()
        } catch let error as any HTTPResponseError {
            return APIError(error.status, "\(error)").response()
        } catch {
            context.logger.error("request failed: \(error)")
            return APIError(.internalServerError, "internal error: \(error)").response()
        }
    }
}
