import Foundation
import Hummingbird
import HummingbirdTesting
import UniLIPIO
import UniLIPServer
import XCTest

/// The shipped models behind the API: all four tasks give sensible results.
final class ServerModelTests: XCTestCase {
    func testShippedModelsAnswerReconstructEditAndGenerate() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Models").path
        let backend = try ModelBackend(folders: ModelFolders(root: root), maxReconstructSide: 64)
        XCTAssertEqual(backend.sampleResolution, 64)
        try await TestServer(backend: backend).app.test(.router) { client in
            let (_, ask, _) = try await client.post(["task": "ask", "sample": "test-0", "question": "How many shapes are there?"])
            let answered = try await client.finish(try XCTUnwrap(ask["id"] as? String))
            XCTAssertEqual(answered["state"] as? String, "done", "\(answered)")
            XCTAssertFalse(((answered["result"] as? [String: Any])?["answer"] as? String ?? "").isEmpty)

            let (_, recon, _) = try await client.post(["task": "reconstruct", "sample": "test-0"])
            let reconstructed = try await client.finish(try XCTUnwrap(recon["id"] as? String))
            let psnr = try XCTUnwrap((reconstructed["result"] as? [String: Any])?["psnr"] as? Double)
            XCTAssertGreaterThan(psnr, 15, "the shipped autoencoder reconstructs test scenes well above noise")
            XCTAssertNil((reconstructed["result"] as? [String: Any])?["note"])

            // An upload over the reconstruction side limit is scaled down first, and says so.
            let (_, big, _) = try await client.post(["task": "reconstruct", "image": try base64PNG(width: 128, height: 80)])
            let scaled = try await client.finish(try XCTUnwrap(big["id"] as? String))
            let bigResult = try XCTUnwrap(scaled["result"] as? [String: Any], "\(scaled)")
            XCTAssertEqual(bigResult["note"] as? String, "scaled from 128×80 to 64×40 first (the limit is 64 px a side)")
            try await client.execute(uri: try XCTUnwrap(bigResult["image_url"] as? String), method: .get) { response in
                let image = try Image(data: Data(buffer: response.body))
                XCTAssertEqual([image.width, image.height], [64, 40])
            }

            for task in [["task": "edit", "sample": "test-0", "instruction": "make the first shape red"],
                         ["task": "generate", "prompt": "a red circle"]] {
                var body: [String: Any] = task
                body["steps"] = 2
                let (status, job, _) = try await client.post(body)
                XCTAssertEqual(status, .accepted)
                let done = try await client.finish(try XCTUnwrap(job["id"] as? String))
                XCTAssertEqual(done["state"] as? String, "done", "\(done)")
                let url = try XCTUnwrap((done["result"] as? [String: Any])?["image_url"] as? String)
                try await client.execute(uri: url, method: .get) { response in
                    XCTAssertEqual(response.status, .ok)
                    XCTAssertEqual(try Image(data: Data(buffer: response.body)).width, 64)
                }
            }
        }
    }
}
