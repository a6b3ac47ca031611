import Foundation
import Hummingbird
import UniLIPIO

/// A refused request: answered with `status` and {"error": message}.
public struct APIError: Error, HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status.code) \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }

    func response() -> Response {
        var response = JSON.response(ErrorBody(error: message), status: status)
        response.headers.append(contentsOf: headers)
        return response
    }
}

struct ErrorBody: Encodable {
    let error: String
}

enum JSON {
    static func response<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain structs cannot fail; an empty object is the fallback all the same.
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The body of POST /api/jobs, every field optional so that a missing one gets a clear message.
struct JobBody: Decodable {
    var task: String?
    var image: String?
    var sample: String?
    var question: String?
    var instruction: String?
    var prompt: String?
    // Numbers decode as Double and are checked here: Foundation's own range errors say only
    // "not valid JSON".
    var seed: Double?
    var steps: Double?
    var guidance: Double?
}

/// Turns a posted body into a job, or the 4xx error that refuses it.
struct JobValidator {
    let limits: ServerLimits
    let samples: SampleScenes

    func request(from data: Data) throws -> JobRequest {
        guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
            throw APIError(.badRequest, "the body is not a JSON object")
        }
        let body: JobBody
        do {
            body = try JSONDecoder().decode(JobBody.self, from: data)
        } catch let error as DecodingError {
            throw APIError(.badRequest, "the body is not a valid job: \(Self.describe(error))")
        }
        guard let name = body.task else {
            throw APIError(.badRequest, "missing \"task\": one of \(JobTask.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let task = JobTask(rawValue: name) else {
            throw APIError(.badRequest, "unknown task \"\(String(name.prefix(40)))\": use one of \(JobTask.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var request = JobRequest(task: task)
        if task.needsImage {
            request.image = try image(body)
        } else if body.image != nil || body.sample != nil {
            throw APIError(.badRequest, "the generate task takes no image")
        }
        if let field = task.textField {
            let given: String?
            switch task {
            case .ask: given = body.question
            case .edit: given = body.instruction
            default: given = body.prompt
            }
            request.text = try text(given, field: field)
        }
        if let seed = body.seed {
            guard seed >= 0, seed <= Self.maxSeed, seed.rounded() == seed else {
                throw APIError(.badRequest, "seed must be a whole number between 0 and \(Int(Self.maxSeed)) (got \(seed))")
            }
            request.seed = UInt64(seed)
        }
        if let steps = body.steps {
            let range = limits.steps
            guard steps.rounded() == steps, steps >= Double(range.lowerBound), steps <= Double(range.upperBound) else {
                throw APIError(.badRequest, "steps must be a whole number between \(range.lowerBound) and \(range.upperBound) (got \(steps))")
            }
            request.steps = Int(steps)
        }
        if let guidance = body.guidance {
            guard guidance.isFinite, limits.guidance.contains(Float(guidance)) else {
                throw APIError(.badRequest, "guidance must be between \(limits.guidance.lowerBound) and \(limits.guidance.upperBound) (got \(guidance))")
            }
            request.guidance = Float(guidance)
        }
        return request
    }

    /// Seeds travel as JSON numbers: whole numbers up to 2^53 are exact.
    static let maxSeed = 9_007_199_254_740_991.0

    func text(_ value: String?, field: String) throws -> String {
        guard let value, !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw APIError(.badRequest, "the \(field) is empty")
        }
        guard value.count <= limits.maxTextLength else {
            throw APIError(.badRequest, "the \(field) is \(value.count) characters; the limit is \(limits.maxTextLength)")
        }
        return value
    }

    func image(_ body: JobBody) throws -> Image {
        switch (body.image, body.sample) {
        case (nil, nil):
            throw APIError(.badRequest, "this task needs an image: give \"image\" (base64 PNG or JPEG) or \"sample\" (e.g. \"test-3\")")
        case (.some, .some):
            throw APIError(.badRequest, "give \"image\" or \"sample\", not both")
        case (nil, .some(let name)):
            guard let image = samples.image(named: name) else {
                throw APIError(.badRequest, "unknown sample \"\(String(name.prefix(40)))\": names are SPLIT-INDEX, e.g. test-3")
            }
            return image
        case (.some(let encoded), nil):
            return try Self.decodeImage(encoded, maxSide: limits.maxImageSide)
        }
    }

    /// Decodes base64 (a data: URL prefix allowed) PNG or JPEG bytes, checking the size from the
    /// header before any pixels are allocated.
    static func decodeImage(_ encoded: String, maxSide: Int) throws -> Image {
        var text = Substring(encoded)
        if text.hasPrefix("data:"), let comma = text.firstIndex(of: ",") { text = text[text.index(after: comma)...] }
        guard let data = Data(base64Encoded: String(text), options: .ignoreUnknownCharacters), !data.isEmpty else {
            throw APIError(.badRequest, "\"image\" is not base64 data")
        }
        let (pixels, overflow) = maxSide.multipliedReportingOverflow(by: maxSide)
        let limits = ImageLimits(maxWidth: maxSide, maxHeight: maxSide, maxPixels: overflow ? Int.max : pixels)
        do {
            return try Image(data: data, source: "the image", limits: limits)
        } catch let error as ImageError {
            if case .tooLarge(let w, let h, _) = error.reason {
                throw APIError(.unprocessableContent, "the image is \(w)×\(h) pixels; each side may be at most \(maxSide)")
            }
            throw APIError(.badRequest, "the image cannot be decoded: \(error.description)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.isEmpty ? "the body" : "\"" + keys.map(\.stringValue).joined(separator: ".") + "\""
        }
        switch error {
        case .typeMismatch(let type, let c): return "\(path(c.codingPath)) should be \(Self.name(type))"
        case .valueNotFound(let type, let c): return "\(path(c.codingPath)) should be \(Self.name(type))"
        case .keyNotFound(let key, _): return "missing \"\(key.stringValue)\""
        case .dataCorrupted(let c):
            return "\(path(c.codingPath)) is malformed"
        @unknown default: return "malformed"
        }
    }

    static func name(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        default: return "an object"
        }
    }
}

/// A job as GET /api/jobs/{id} shows it.
struct JobView: Encodable {
    struct Result: Encodable {
        var answer: String?
        var psnr: Float?
        var ssim: Float?
        var image_url: String?
        var note: String?
    }

    var id: String
    var task: String
    var state: String
    var progress: Double
    var message: String
    var ahead: Int?
    var seconds: Double?
    var error: String?
    var result: Result?
    var url: String

    init(_ job: JobSnapshot) {
        id = job.id
        task = job.task.rawValue
        state = job.state.rawValue
        progress = (job.progress * 1000).rounded() / 1000
        message = job.message
        ahead = job.ahead
        seconds = job.seconds.map { ($0 * 100).rounded() / 100 }
        error = job.error
        url = "/api/jobs/\(job.id)"
        if job.state == .done, let output = job.output {
            // JSON has no infinity: an exact reconstruction reports 99 dB.
            result = Result(answer: output.answer, psnr: output.psnr.map { $0.isFinite ? ($0 * 100).rounded() / 100 : 99 },
                            ssim: output.ssim.flatMap { $0.isFinite ? ($0 * 1000).rounded() / 1000 : nil },
                            image_url: job.hasImage ? "/api/jobs/\(job.id)/image.png" : nil, note: output.note)
        }
    }
}
