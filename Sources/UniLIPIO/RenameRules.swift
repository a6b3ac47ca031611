import Foundation

/// One step that maps checkpoint keys to parameter names.
///
/// Encoded as JSON like `{"prefix": {"from": "model.vision_tower.", "to": "vision_tower."}}`,
/// `{"regex": {"pattern": "\\.gamma$", "replacement": ".weight"}}` or
/// `{"drop": {"pattern": "^lm_head\\."}}`.
public enum RenameRule: Codable, Equatable, Sendable {
    /// Replaces a leading `from` with `to`; keys without the prefix pass unchanged.
    case prefix(from: String, to: String)
    /// Replaces every match of an NSRegularExpression `pattern` with `replacement`
    /// (`$1`… refer to capture groups).
    case regex(pattern: String, replacement: String)
    /// Drops keys matching `pattern` (searched anywhere in the key; anchor it with ^…$).
    case drop(pattern: String)
}

/// An invalid rename rule or a rename that makes two keys collide.
public struct RenameError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// An ordered list of rename rules, applied in turn to each key: every rule sees the result of
/// the previous one, and a dropped key stops there.
public struct RenameRules: Codable, Equatable, Sendable, ExpressibleByArrayLiteral {
    public var rules: [RenameRule]

    public init(_ rules: [RenameRule] = []) { self.rules = rules }
    public init(arrayLiteral rules: RenameRule...) { self.rules = rules }

    // Encoded as a bare JSON array of rules.
    public init(from decoder: Decoder) throws {
        rules = try decoder.singleValueContainer().decode([RenameRule].self)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rules)
    }

    /// Reads rules from a JSON file.
    public static func load(path: String) throws -> RenameRules {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw RenameError(message: "\(path): cannot read rename rules (\(error.localizedDescription))")
        }
        do {
            return try JSONDecoder().decode(RenameRules.self, from: data)
        } catch {
            throw RenameError(message: "\(path): invalid rename rules (\(error))")
        }
    }

    /// The rules with their patterns compiled; fails on an invalid pattern, naming the rule.
    public func compiled() throws -> CompiledRenameRules { try CompiledRenameRules(self) }

    /// The new name of `key`, or nil when a rule drops it.
    public func apply(_ key: String) throws -> String? { try compiled().apply(key) }
}

/// Rename rules ready to apply to many keys.
public struct CompiledRenameRules {
    private enum Step {
        case prefix(String, String)
        case regex(NSRegularExpression, String)
        case drop(NSRegularExpression)
    }

    private let steps: [Step]

    public init(_ rules: RenameRules) throws {
        func compile(_ pattern: String, _ index: Int) throws -> NSRegularExpression {
            do {
                return try NSRegularExpression(pattern: pattern)
            } catch {
                throw RenameError(message: "rename rule \(index + 1): invalid regular expression '\(pattern)'")
            }
        }
        steps = try rules.rules.enumerated().map { index, rule in
            switch rule {
            case let .prefix(from, to): return .prefix(from, to)
            case let .regex(pattern, replacement): return .regex(try compile(pattern, index), replacement)
            case let .drop(pattern): return .drop(try compile(pattern, index))
            }
        }
    }

    /// The new name of `key`, or nil when a rule drops it.
    public func apply(_ key: String) -> String? {
        var name = key
        for step in steps {
            switch step {
            case let .prefix(from, to):
                if name.hasPrefix(from) { name = to + name.dropFirst(from.count) }
            case let .regex(re, template):
                let range = NSRange(name.startIndex..., in: name)
                name = re.stringByReplacingMatches(in: name, range: range, withTemplate: template)
            case let .drop(re):
                let range = NSRange(name.startIndex..., in: name)
                if re.firstMatch(in: name, range: range) != nil { return nil }
            }
        }
        return name
    }

    /// Maps every key; returns new name → original key. Two keys that end up with the same
    /// name are an error naming both.
    public func rename<S: Sequence>(_ keys: S) throws -> [String: String] where S.Element == String {
        var out: [String: String] = [:]
        for key in keys {
            guard let name = apply(key) else { continue }
            if let other = out[name] {
                let (a, b) = other < key ? (other, key) : (key, other)
                throw RenameError(message: "checkpoint keys '\(a)' and '\(b)' both rename to '\(name)'")
            }
            out[name] = key
        }
        return out
    }
}
