import Foundation
import Hummingbird
import HummingbirdTesting
import UniLIPIO
import UniLIPServer
import XCTest

final class ServerAPITests: XCTestCase {
    func testPageIsOneSelfContainedDocument() async throws {
        try await TestServer(backend: FakeBackend()).app.test(.router) { client in
            try await client.execute(uri: "/", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(response.headers[.contentType], "text/html; charset=utf-8")
                let page = String(buffer: response.body)
                for id in ["ask-btn", "reconstruct-btn", "edit-btn", "generate-btn", "ask-answer", "reconstruct-psnr",
                           "edit-image", "generate-image", "upload", "samples"] {
                    XCTAssertTrue(page.contains("id=\"\(id)\""), "page lacks #\(id)")
                }
                XCTAssertFalse(page.contains("http://") || page.contains("https://"), "the page must not load external resources")
            }
        }
    }

    func testHealthAndOpenAPI() async throws {
        try await TestServer(backend: FakeBackend()).app.test(.router) { client in
            let (status, health) = try await client.get("/api/health")
            XCTAssertEqual(status, .ok)
            XCTAssertEqual(health["status"] as? String, "ok")
            XCTAssertEqual(health["max_queue"] as? Int, 8)
            let (specStatus, spec) = try await client.get("/api/openapi.json")
            XCTAssertEqual(specStatus, .ok)
            XCTAssertEqual(spec["openapi"] as? String, "3.0.3")
            XCTAssertNotNil((spec["paths"] as? [String: Any])?["/api/jobs"])
        }
    }

    func testSamplesAreListedAndServedAsPNG() async throws {
        try await TestServer(backend: FakeBackend()).app.test(.router) { client in
            let (status, list) = try await client.get("/api/samples")
            XCTAssertEqual(status, .ok)
            let samples = list["samples"] as? [[String: Any]] ?? []
            XCTAssertEqual(samples.count, 8)
            XCTAssertEqual(samples.first?["name"] as? String, "test-0")
            XCTAssertFalse((samples.first?["caption"] as? String ?? "").isEmpty)
            try await client.execute(uri: "/api/samples/test-3.png", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(response.headers[.contentType], "image/png")
                let image = try Image(data: Data(buffer: response.body))
                XCTAssertEqual(image.width, 32)
            }
            let (missing, error) = try await client.get("/api/samples/nowhere-3.png")
            XCTAssertEqual(missing, .notFound)
            XCTAssertNotNil(error["error"] as? String)
        }
    }

    func testEachTaskRunsToItsResult() async throws {
        let backend = FakeBackend()
        try await TestServer(backend: backend).app.test(.router) { client in
            let (s1, ask, headers) = try await client.post(["task": "ask", "sample": "test-1", "question": "how many?"])
            XCTAssertEqual(s1, .accepted)
            let id = try XCTUnwrap(ask["id"] as? String)
            XCTAssertEqual(headers[.location], "/api/jobs/\(id)")
            let askDone = try await client.finish(id)
            XCTAssertEqual(askDone["state"] as? String, "done")
            XCTAssertEqual(askDone["progress"] as? Double, 1)
            XCTAssertEqual((askDone["result"] as? [String: Any])?["answer"] as? String, "fake answer to: how many?")

            let (s2, recon, _) = try await client.post(["task": "reconstruct", "image": try base64PNG(width: 20, height: 12)])
            XCTAssertEqual(s2, .accepted)
            let reconDone = try await client.finish(try XCTUnwrap(recon["id"] as? String))
            let result = try XCTUnwrap(reconDone["result"] as? [String: Any])
            XCTAssertEqual(result["psnr"] as? Double, 30)
            let url = try XCTUnwrap(result["image_url"] as? String)
            try await client.execute(uri: url, method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertEqual(try Image(data: Data(buffer: response.body)).width, 8)
            }

            let (s3, edit, _) = try await client.post(["task": "edit", "sample": "test-2", "instruction": "make it red",
                                                       "steps": 3, "guidance": 2.5, "seed": 7])
            XCTAssertEqual(s3, .accepted)
            let editDone = try await client.finish(try XCTUnwrap(edit["id"] as? String))
            XCTAssertNotNil((editDone["result"] as? [String: Any])?["image_url"] as? String)

            let (s4, gen, _) = try await client.post(["task": "generate", "prompt": "a red circle"])
            XCTAssertEqual(s4, .accepted)
            let genDone = try await client.finish(try XCTUnwrap(gen["id"] as? String))
            XCTAssertEqual(genDone["state"] as? String, "done")
            XCTAssertEqual(backend.ran, [.ask, .reconstruct, .edit, .generate])
        }
    }

    func testFailedJobReportsItsError() async throws {
        let backend = FakeBackend()
        backend.failWith = "the model refused"
        try await TestServer(backend: backend).app.test(.router) { client in
            let (_, job, _) = try await client.post(["task": "generate", "prompt": "a red circle"])
            let done = try await client.finish(try XCTUnwrap(job["id"] as? String))
            XCTAssertEqual(done["state"] as? String, "failed")
            XCTAssertTrue((done["error"] as? String ?? "").contains("the model refused"))
            XCTAssertNil(done["result"])
            let (health, h) = try await client.get("/api/health")
            XCTAssertEqual(health, .ok)
            XCTAssertEqual(h["failed"] as? Int, 1)
        }
    }
}
