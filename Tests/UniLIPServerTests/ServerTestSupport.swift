import Foundation
import Hummingbird
import HummingbirdTesting
import UniLIPIO
import UniLIPServer
import XCTest

/// A backend without models: answers echo the text, images are a flat grey square. While
/// `gate` is closed, jobs block, so tests can fill the queue deterministically.
final class FakeBackend: JobBackend, @unchecked Sendable {
    let sampleResolution = 32
    let modelNames = ["understanding": "fake"]
    private let lock = NSCondition()
    private var open = true
    private(set) var ran: [JobTask] = []
    var failWith: String?

    func close() { lock.lock(); open = false; lock.unlock() }
    func release() { lock.lock(); open = true; lock.broadcast(); lock.unlock() }

    func run(_ request: JobRequest, progress: @escaping (Double, String) -> Void) throws -> JobOutput {
        lock.lock()
        while !open { lock.wait() }
        ran.append(request.task)
        let failure = failWith
        lock.unlock()
        progress(0.5, "halfway")
        if let failure { throw APIError(.badRequest, failure) }
        let image = Image(width: 8, height: 8, channels: 3, fill: 128)
        switch request.task {
        case .ask: return JobOutput(answer: "fake answer to: \(request.text)")
        case .reconstruct: return JobOutput(psnr: 30, ssim: 0.9, image: image)
        case .edit, .generate: return JobOutput(image: image)
        }
    }
}

struct TestServer {
    let server: WebServer
    let app: Application<RouterResponder<BasicRequestContext>>

    init(backend: any JobBackend, limits: ServerLimits = ServerLimits()) {
        server = WebServer(configuration: ServerConfiguration(port: 0, limits: limits), backend: backend)
        app = Application(router: server.router())
    }
}

func json(_ buffer: ByteBuffer) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
}

func body(_ object: [String: Any]) -> ByteBuffer {
    ByteBuffer(bytes: (try? JSONSerialization.data(withJSONObject: object)) ?? Data())
}

extension TestClientProtocol {
    /// POSTs a job; returns (status, decoded body, headers).
    func post(_ object: [String: Any]) async throws -> (HTTPResponse.Status, [String: Any], HTTPFields) {
        try await execute(uri: "/api/jobs", method: .post, headers: [.contentType: "application/json"], body: body(object)) {
            ($0.status, json($0.body), $0.headers)
        }
    }

    func get(_ uri: String) async throws -> (HTTPResponse.Status, [String: Any]) {
        try await execute(uri: uri, method: .get) { ($0.status, json($0.body)) }
    }

    /// Polls a job until it leaves queued/running (bounded so a hang fails instead of blocking).
    func finish(_ id: String, file: StaticString = #filePath, line: UInt = #line) async throws -> [String: Any] {
        for _ in 0..<6000 {
            let (status, job) = try await get("/api/jobs/\(id)")
            XCTAssertEqual(status, .ok, file: file, line: line)
            if let state = job["state"] as? String, state == "done" || state == "failed" { return job }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTFail("job \(id) did not finish", file: file, line: line)
        return [:]
    }
}

func base64PNG(width: Int, height: Int) throws -> String {
    try Image(width: width, height: height, channels: 3, fill: 200).pngData().base64EncodedString()
}
