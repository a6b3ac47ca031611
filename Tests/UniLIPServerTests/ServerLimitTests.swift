import Foundation
import Hummingbird
import HummingbirdTesting
import UniLIPIO
import UniLIPServer
import XCTest

final class ServerLimitTests: XCTestCase {
    /// Posts `object` and expects `status` with an {"error": ...} body containing `fragment`.
    func expect(_ client: some TestClientProtocol, _ object: [String: Any], _ status: HTTPResponse.Status, _ fragment: String,
                file: StaticString = #filePath, line: UInt = #line) async throws {
        let (got, body, _) = try await client.post(object)
        XCTAssertEqual(got, status, "\(object.keys.sorted())", file: file, line: line)
        let message = body["error"] as? String ?? "<no error field>"
        XCTAssertTrue(message.contains(fragment), "\"\(message)\" lacks \"\(fragment)\"", file: file, line: line)
    }

    func testBadJobsAreRefusedWithClearMessages() async throws {
        try await TestServer(backend: FakeBackend()).app.test(.router) { client in
            try await expect(client, ["task": "paint"], .badRequest, "unknown task \"paint\"")
            try await expect(client, ["sample": "test-1"], .badRequest, "missing \"task\"")
            try await expect(client, ["task": 3], .badRequest, "\"task\" should be a string")
            try await expect(client, ["task": "ask", "question": "what?"], .badRequest, "needs an image")
            try await expect(client, ["task": "ask", "sample": "test-1", "image": "aGVsbG8=", "question": "q"], .badRequest, "not both")
            try await expect(client, ["task": "ask", "sample": "mars-1", "question": "q"], .badRequest, "unknown sample")
            try await expect(client, ["task": "ask", "sample": "test-1"], .badRequest, "the question is empty")
            try await expect(client, ["task": "ask", "sample": "test-1", "question": "   "], .badRequest, "the question is empty")
            try await expect(client, ["task": "edit", "sample": "test-1", "instruction": String(repeating: "a", count: 501)],
                             .badRequest, "501 characters; the limit is 500")
            try await expect(client, ["task": "generate", "prompt": ""], .badRequest, "the prompt is empty")
            try await expect(client, ["task": "generate", "prompt": "p", "sample": "test-1"], .badRequest, "takes no image")
            try await expect(client, ["task": "generate", "prompt": "p", "steps": 0], .badRequest, "steps must be a whole number between 1 and 50")
            try await expect(client, ["task": "generate", "prompt": "p", "steps": 51], .badRequest, "steps must be a whole number between 1 and 50")
            try await expect(client, ["task": "generate", "prompt": "p", "steps": 2.5], .badRequest, "steps must be a whole number")
            try await expect(client, ["task": "generate", "prompt": "p", "guidance": 21], .badRequest, "guidance must be between")
            try await expect(client, ["task": "generate", "prompt": "p", "guidance": -1], .badRequest, "guidance must be between")
            try await expect(client, ["task": "generate", "prompt": "p", "seed": -1], .badRequest, "seed must be a whole number between 0 and")
            try await expect(client, ["task": "generate", "prompt": "p", "steps": "many"], .badRequest, "\"steps\" should be a number")
        }
    }

    func testBrokenBodiesAreRefused() async throws {
        try await TestServer(backend: FakeBackend()).app.test(.router) { client in
            let notJSON = try await client.execute(uri: "/api/jobs", method: .post, body: ByteBuffer(string: "task=ask")) {
                ($0.status, json($0.body))
            }
            XCTAssertEqual(notJSON.0, .badRequest)
            XCTAssertTrue((notJSON.1["error"] as? String ?? "").contains("not a JSON object"))
            let array = try await client.execute(uri: "/api/jobs", method: .post, body: ByteBuffer(string: "[1, 2]")) { $0.status }
            XCTAssertEqual(array, .badRequest)
        }
    }

    func testImagesAreChecked() async throws {
        try await TestServer(backend: FakeBackend()).app.test(.router) { client in
            try await expect(client, ["task": "reconstruct", "image": "%%%"], .badRequest, "not base64")
            let text = Data("definitely not an image".utf8).base64EncodedString()
            try await expect(client, ["task": "reconstruct", "image": text], .badRequest, "cannot be decoded")
            let truncated = try Image(width: 16, height: 16, channels: 3, fill: 9).pngData().prefix(40).base64EncodedString()
            try await expect(client, ["task": "reconstruct", "image": truncated], .badRequest, "cannot be decoded")
            try await expect(client, ["task": "reconstruct", "image": try base64PNG(width: 1025, height: 4)],
                             .unprocessableContent, "1025×4 pixels; each side may be at most 1024")
            let jpeg = try Image(width: 24, height: 24, channels: 3, fill: 60).jpegData().base64EncodedString()
            let (status, _, _) = try await client.post(["task": "reconstruct", "image": "data:image/jpeg;base64," + jpeg])
            XCTAssertEqual(status, .accepted)
        }
    }

    func testBodyOverTheLimitGets413() async throws {
        var limits = ServerLimits()
        limits.maxBodyBytes = 4096
        try await TestServer(backend: FakeBackend(), limits: limits).app.test(.router) { client in
            let big = String(repeating: "A", count: 8000)
            let (status, body, _) = try await client.post(["task": "reconstruct", "image": big])
            XCTAssertEqual(status, .contentTooLarge)
            XCTAssertTrue((body["error"] as? String ?? "").contains("over the limit of 4096 bytes"))
        }
    }

    func testUnknownJobsAndRoutesGet404() async throws {
        try await TestServer(backend: FakeBackend()).app.test(.router) { client in
            let (s1, b1) = try await client.get("/api/jobs/no-such-job")
            XCTAssertEqual(s1, .notFound)
            XCTAssertTrue((b1["error"] as? String ?? "").contains("no job \"no-such-job\""))
            let (s2, _) = try await client.get("/api/jobs/no-such-job/image.png")
            XCTAssertEqual(s2, .notFound)
            let (s3, b3) = try await client.get("/api/nothing")
            XCTAssertEqual(s3, .notFound)
            XCTAssertTrue((b3["error"] as? String ?? "").contains("no such endpoint"))
        }
    }

    func testFullQueueGets429WithRetryAfterAndAcceptedJobsFinish() async throws {
        let backend = FakeBackend()
        backend.close()
        var limits = ServerLimits()
        limits.maxQueue = 2
        try await TestServer(backend: backend, limits: limits).app.test(.router) { client in
            var accepted: [String] = []
            var refusal: (HTTPResponse.Status, [String: Any], HTTPFields)?
            for _ in 0..<10 {
                let response = try await client.post(["task": "generate", "prompt": "a blue square"])
                if response.0 == .accepted, let id = response.1["id"] as? String {
                    accepted.append(id)
                } else {
                    refusal = response
                    break
                }
            }
            // One job runs (blocked) or is about to; at most two wait behind it.
            XCTAssertTrue((2...3).contains(accepted.count), "accepted \(accepted.count)")
            let (status, body, headers) = try XCTUnwrap(refusal)
            XCTAssertEqual(status, .tooManyRequests)
            XCTAssertEqual(headers[.retryAfter], "5")
            XCTAssertTrue((body["error"] as? String ?? "").contains("the queue is full"))
            let (_, health) = try await client.get("/api/health")
            XCTAssertEqual(health["refused"] as? Int, 1)
            let (early, earlyBody) = try await client.get("/api/jobs/\(accepted[0])/image.png")
            XCTAssertEqual(early, .conflict)
            XCTAssertTrue((earlyBody["error"] as? String ?? "").contains("is still"))
            backend.release()
            for id in accepted {
                let job = try await client.finish(id)
                XCTAssertEqual(job["state"] as? String, "done")
            }
            let (again, _, _) = try await client.post(["task": "generate", "prompt": "a blue square"])
            XCTAssertEqual(again, .accepted)
        }
    }

    func testConcurrentBurstIsCappedAndTheRestFinish() async throws {
        let backend = FakeBackend()
        backend.close()
        var limits = ServerLimits()
        limits.maxQueue = 4
        try await TestServer(backend: backend, limits: limits).app.test(.router) { client in
            let answers = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?).self) { group in
                for i in 0..<50 {
                    group.addTask {
                        let (status, body, _) = try await client.post(["task": "ask", "sample": "test-\(i % 8)", "question": "q\(i)"])
                        return (status, body["id"] as? String ?? body["error"] as? String)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let accepted = answers.filter { $0.0 == .accepted }.compactMap(\.1)
            let refused = answers.filter { $0.0 == .tooManyRequests }
            XCTAssertTrue((4...5).contains(accepted.count), "accepted \(accepted.count)")
            XCTAssertEqual(accepted.count + refused.count, 50, "only 202 and 429")
            XCTAssertTrue(refused.allSatisfy { ($0.1 ?? "").contains("the queue is full") })
            backend.release()
            for id in accepted {
                let job = try await client.finish(id)
                XCTAssertEqual(job["state"] as? String, "done")
            }
            let (status, health) = try await client.get("/api/health")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(health["completed"] as? Int, accepted.count)
            XCTAssertEqual(health["refused"] as? Int, refused.count)
        }
    }

    func testOldFinishedJobsAreDropped() async throws {
        var limits = ServerLimits()
        limits.maxJobs = 3
        limits.maxQueue = 1
        try await TestServer(backend: FakeBackend(), limits: limits).app.test(.router) { client in
            var ids: [String] = []
            for i in 0..<5 {
                let (_, job, _) = try await client.post(["task": "generate", "prompt": "prompt \(i)"])
                let id = try XCTUnwrap(job["id"] as? String)
                _ = try await client.finish(id)
                ids.append(id)
            }
            for (i, id) in ids.enumerated() {
                let (status, _) = try await client.get("/api/jobs/\(id)")
                XCTAssertEqual(status, i < 2 ? .notFound : .ok, "job \(i)")
            }
            let (_, health) = try await client.get("/api/health")
            XCTAssertEqual(health["kept_jobs"] as? Int, 3)
        }
    }

    func testLimitsProblem() {
        var limits = ServerLimits()
        XCTAssertNil(limits.problem())
        limits.maxJobs = limits.maxQueue
        XCTAssertNotNil(limits.problem())
    }
}
