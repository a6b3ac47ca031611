import Foundation

/// Finds the shipped model folders without flags: `--model` wins, then $UNILIP_MODELS/NAME,
/// then Models/NAME under the current folder, then under the checkout that holds this binary
/// (`.build/<config>/unilip` → `Models/NAME`).
enum ModelLocator {
    static func locate(_ name: String, explicit: String?) throws -> String {
        if let explicit { return explicit }
        var candidates: [String] = []
        if let root = ProcessInfo.processInfo.environment["UNILIP_MODELS"] {
            candidates.append((root as NSString).appendingPathComponent(name))
        }
        candidates.append(("Models" as NSString).appendingPathComponent(name))
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent("Models").appendingPathComponent(name).path)
            dir.deleteLastPathComponent()
        }
        for c in candidates where FileManager.default.fileExists(atPath: (c as NSString).appendingPathComponent("config.json")) {
            return c
        }
        throw ModelNotFound(name: name, searched: candidates)
    }

    struct ModelNotFound: Error, CustomStringConvertible {
        let name: String
        let searched: [String]
        var description: String {
            "model '\(name)' not found (looked in \(searched.joined(separator: ", "))); pass --model DIR or set UNILIP_MODELS"
        }
    }
}
