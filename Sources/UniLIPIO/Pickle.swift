import Foundation

/// A value produced by the pickle subset that `torch.save` writes. Dicts and lists are classes
/// because the memo shares them and SETITEMS/APPENDS mutate them in place.
public indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// A whitelisted global (module, name), before it is called.
    case global(String, String)
    /// A `torch.save` persistent id: ('storage', storage type, key, location, numel).
    case storage(TorchStorageRef)
    /// `_rebuild_tensor_v2(storage, offset, size, stride, …)`.
    case tensor(TorchTensorRef)

    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case let .global(m, n): return "\(m).\(n)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }
}

public final class PickleList {
    public var items: [PickleValue] = []
}

/// An insertion-ordered dict; torch keys are strings (or ints in `_metadata`, kept as text).
public final class PickleDict {
    public private(set) var keys: [String] = []
    public private(set) var values: [String: PickleValue] = [:]

    func set(_ key: String, _ value: PickleValue) {
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
    }

    public subscript(key: String) -> PickleValue? { values[key] }
}

public struct TorchStorageRef {
    /// The torch storage class name, e.g. "FloatStorage".
    public let type: String
    /// The file under `<prefix>/data/` holding the bytes.
    public let key: String
    public let numel: Int
}

public struct TorchTensorRef {
    public let storage: TorchStorageRef
    public let offset: Int
    public let shape: [Int]
    public let stride: [Int]
}

public struct PickleError: Error, CustomStringConvertible {
    public let message: String
    public let offset: Int
    public var description: String { "\(message) at byte \(offset) of data.pkl" }
}

/// Unpickles the protocol 2–4 subset torch.save emits. Only the globals torch checkpoints need
/// are accepted: anything else is an error naming it, never arbitrary code.
struct Unpickler {
    private let bytes: UnsafeRawBufferPointer
    private var pos = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    static let allowedGlobals: Set<String> = [
        "collections.OrderedDict", "builtins.dict", "__builtin__.dict",
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter",
    ]

    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> PickleValue {
        var u = Unpickler(bytes)
        return try u.run()
    }

    private func fail(_ message: String, at offset: Int? = nil) -> PickleError {
        PickleError(message: message, offset: offset ?? pos)
    }

    private mutating func byte() throws -> UInt8 {
        guard pos < bytes.count else { throw fail("unexpected end of data") }
        defer { pos += 1 }
        return bytes[pos]
    }

    private mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= bytes.count - pos else { throw fail("unexpected end of data (\(n) bytes wanted)") }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + n)])
    }

    private mutating func uint(_ n: Int) throws -> UInt64 {
        let b = try take(n)
        var v: UInt64 = 0
        for i in (0..<n).reversed() { v = v << 8 | UInt64(b[i]) }
        return v
    }

    /// A length field; values past Int.max fail in `take` like any length past the end.
    private mutating func length(_ n: Int) throws -> Int {
        Int(exactly: try uint(n)) ?? Int.max
    }

    private mutating func line() throws -> String {
        guard let end = bytes[pos...].firstIndex(of: 0x0A) else { throw fail("unterminated text line") }
        let s = String(decoding: bytes[pos..<end], as: UTF8.self)
        pos = end + 1
        return s
    }

    private mutating func text(_ n: Int) throws -> String {
        String(decoding: try take(n), as: UTF8.self)
    }

    private mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw fail("stack underflow") }
        return v
    }

    private mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast(), m <= stack.count else { throw fail("MARK missing") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    private mutating func top() throws -> PickleValue {
        guard let v = stack.last else { throw fail("stack underflow") }
        return v
    }

    private func key(_ v: PickleValue) throws -> String {
        switch v {
        case let .string(s): return s
        case let .int(i): return String(i)
        default: throw fail("dict key of type \(v.kind) is not supported")
        }
    }

    private mutating func global(_ module: String, _ name: String, at offset: Int) throws -> PickleValue {
        let full = "\(module).\(name)"
        if module == "torch", name.hasSuffix("Storage") { return .global(module, name) }
        guard Self.allowedGlobals.contains(full) else {
            throw fail("unsupported global '\(full)' (not part of a tensor state dict)", at: offset)
        }
        return .global(module, name)
    }

    private mutating func run() throws -> PickleValue {
        while true {
            let at = pos
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                         // PROTO
            case 0x95: _ = try take(8)                                        // FRAME
            case 0x2E: return try pop()                                       // STOP
            case 0x28: marks.append(stack.count)                              // MARK
            case 0x7D: stack.append(.dict(PickleDict()))                      // EMPTY_DICT
            case 0x5D: stack.append(.list(PickleList()))                      // EMPTY_LIST
            case 0x29: stack.append(.tuple([]))                               // EMPTY_TUPLE
            case 0x4E: stack.append(.none)                                    // NONE
            case 0x88: stack.append(.bool(true))                              // NEWTRUE
            case 0x89: stack.append(.bool(false))                             // NEWFALSE
            case 0x4B: stack.append(.int(Int(try uint(1))))                   // BININT1
            case 0x4D: stack.append(.int(Int(try uint(2))))                   // BININT2
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))  // BININT
            case 0x8A:                                                        // LONG1
                let n = Int(try byte())
                guard n <= 8 else { throw fail("LONG1 of \(n) bytes is too large", at: at) }
                let b = try take(n)
                var v: Int64 = 0
                for i in (0..<n).reversed() { v = v << 8 | Int64(b[i]) }
                if n > 0, n < 8, b[n - 1] & 0x80 != 0 { v -= Int64(1) << (8 * n) }
                stack.append(.int(Int(v)))
            case 0x47:                                                        // BINFLOAT, big-endian
                let b = try take(8)
                stack.append(.float(Double(bitPattern: b.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
            case 0x58: stack.append(.string(try text(try length(4))))      // BINUNICODE
            case 0x8C: stack.append(.string(try text(try length(1))))      // SHORT_BINUNICODE
            case 0x8D: stack.append(.string(try text(try length(8))))      // BINUNICODE8
            case 0x54: stack.append(.string(try text(try length(4))))      // BINSTRING
            case 0x55: stack.append(.string(try text(try length(1))))      // SHORT_BINSTRING
            case 0x42: stack.append(.bytes(Array(try take(try length(4))))) // BINBYTES
            case 0x43: stack.append(.bytes(Array(try take(try length(1))))) // SHORT_BINBYTES
            case 0x85: stack.append(.tuple([try pop()]))                      // TUPLE1
            case 0x86:                                                        // TUPLE2
                let b = try pop(), a = try pop()
                stack.append(.tuple([a, b]))
            case 0x87:                                                        // TUPLE3
                let c = try pop(), b = try pop(), a = try pop()
                stack.append(.tuple([a, b, c]))
            case 0x74: stack.append(.tuple(try popMark()))                    // TUPLE
            case 0x30: _ = try pop()                                          // POP
            case 0x71: memo[Int(try uint(1))] = try top()                     // BINPUT
            case 0x72: memo[Int(try uint(4))] = try top()                     // LONG_BINPUT
            case 0x94: memo[memo.count] = try top()                           // MEMOIZE
            case 0x68, 0x6A:                                                  // BINGET, LONG_BINGET
                let i = Int(try uint(op == 0x68 ? 1 : 4))
                guard let v = memo[i] else { throw fail("memo entry \(i) is not set", at: at) }
                stack.append(v)
            case 0x63:                                                        // GLOBAL
                let module = try line(), name = try line()
                stack.append(try global(module, name, at: at))
            case 0x93:                                                        // STACK_GLOBAL
                let n = try pop(), m = try pop()
                guard case let .string(module) = m, case let .string(name) = n else {
                    throw fail("STACK_GLOBAL needs two strings", at: at)
                }
                stack.append(try global(module, name, at: at))
            case 0x73:                                                        // SETITEM
                let v = try pop(), k = try pop()
                guard case let .dict(d) = try top() else { throw fail("SETITEM on a non-dict", at: at) }
                d.set(try key(k), v)
            case 0x75:                                                        // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0, case let .dict(d) = try top() else {
                    throw fail("SETITEMS on a non-dict or with an odd item count", at: at)
                }
                for i in stride(from: 0, to: items.count, by: 2) { d.set(try key(items[i]), items[i + 1]) }
            case 0x61:                                                        // APPEND
                let v = try pop()
                guard case let .list(l) = try top() else { throw fail("APPEND on a non-list", at: at) }
                l.items.append(v)
            case 0x65:                                                        // APPENDS
                let items = try popMark()
                guard case let .list(l) = try top() else { throw fail("APPENDS on a non-list", at: at) }
                l.items += items
            case 0x51:                                                        // BINPERSID
                stack.append(try persistent(try pop(), at: at))
            case 0x52:                                                        // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try reduce(callable, args, at: at))
            case 0x62:                                                        // BUILD
                // State of an OrderedDict (`_metadata`) or a tensor: attributes the reader ignores.
                _ = try pop()
            default:
                throw fail(String(format: "unknown pickle opcode 0x%02x", op), at: at)
            }
        }
    }

    private func persistent(_ pid: PickleValue, at offset: Int) throws -> PickleValue {
        guard case let .tuple(t) = pid, t.count == 5, case .string("storage") = t[0],
              case let .global(_, type) = t[1], case let .string(key) = t[2], case let .int(numel) = t[4]
        else { throw fail("unsupported persistent id (expected ('storage', type, key, location, numel))", at: offset) }
        return .storage(TorchStorageRef(type: type, key: key, numel: numel))
    }

    private func ints(_ v: PickleValue, _ what: String, at offset: Int) throws -> [Int] {
        guard case let .tuple(items) = v else { throw fail("tensor \(what) is not a tuple", at: offset) }
        return try items.map {
            guard case let .int(i) = $0 else { throw fail("tensor \(what) holds a \($0.kind)", at: offset) }
            return i
        }
    }

    private func reduce(_ callable: PickleValue, _ args: PickleValue, at offset: Int) throws -> PickleValue {
        guard case let .global(module, name) = callable, case let .tuple(a) = args else {
            throw fail("REDUCE of \(callable.kind) with \(args.kind) arguments", at: offset)
        }
        switch "\(module).\(name)" {
        case "collections.OrderedDict", "builtins.dict", "__builtin__.dict":
            guard a.isEmpty else { throw fail("\(module).\(name) with arguments is not supported", at: offset) }
            return .dict(PickleDict())
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            guard a.count >= 4, case let .storage(s) = a[0], case let .int(off) = a[1] else {
                throw fail("\(name) expects (storage, offset, size, stride, …)", at: offset)
            }
            let shape = try ints(a[2], "size", at: offset), stride = try ints(a[3], "stride", at: offset)
            guard shape.count == stride.count, shape.allSatisfy({ $0 >= 0 }), off >= 0 else {
                throw fail("tensor size \(shape) and stride \(stride) do not agree", at: offset)
            }
            return .tensor(TorchTensorRef(storage: s, offset: off, shape: shape, stride: stride))
        case "torch._utils._rebuild_parameter":
            guard let data = a.first else { throw fail("_rebuild_parameter without data", at: offset) }
            return data
        default:
            throw fail("cannot call \(module).\(name)", at: offset)
        }
    }
}
