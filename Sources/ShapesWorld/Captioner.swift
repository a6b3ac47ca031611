import UniLIPCore

public enum QuestionType: String, Codable, CaseIterable, Sendable {
    case color, shape, count, position, relation, size, existence
}

public struct QuestionAnswer: Codable, Equatable, Sendable {
    public let type: QuestionType
    public let question: String
    public let answer: String
}

/// Captions and question/answer pairs derived from a scene graph.
public enum Captioner {
    static let numberWords = ["zero", "one", "two", "three", "four"]

    /// "center" for the middle cell, otherwise "top left", "middle right", "bottom center", ….
    public static func positionPhrase(_ o: SceneObject) -> String {
        if o.row == "middle" && o.column == "center" { return "center" }
        return "\(o.row) \(o.column)"
    }

    static func describe(_ o: SceneObject, withSize: Bool) -> String {
        withSize ? "a \(o.size.rawValue) \(o.color.rawValue) \(o.shape.rawValue)" : "a \(o.color.rawValue) \(o.shape.rawValue)"
    }

    static func list(_ items: [String]) -> String {
        switch items.count {
        case 0: return ""
        case 1: return items[0]
        default: return items.dropLast().joined(separator: ", ") + " and " + items[items.count - 1]
        }
    }

    /// Index, in `captions(for:rng:)`, of the phrasing that places every object ("… at the top left").
    public static let placedPhrasing = 0

    /// Several phrasings of the same content, most detailed first.
    public static func captions(for scene: Scene, rng: inout RandomGenerator) -> [String] {
        let objects = scene.objects
        let bg = "\(scene.background.adjective) background"
        let sized = objects.map { describe($0, withSize: true) }
        let placed = objects.map { "\(describe($0, withSize: true)) at the \(positionPhrase($0))" }
        var shuffled = objects.map { describe($0, withSize: false) }
        for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, rng.int(i + 1)) }
        let count = numberWords[objects.count]
        return [
            "\(list(placed)) on a \(bg).",
            "\(list(sized)) on a \(bg).",
            "There \(objects.count == 1 ? "is" : "are") \(count) object\(objects.count == 1 ? "" : "s"): \(list(shuffled)).",
            "A \(bg) with \(list(sized)).",
        ]
    }

    /// Question/answer pairs of every type that the scene supports unambiguously.
    public static func questions(for scene: Scene, rng: inout RandomGenerator) -> [QuestionAnswer] {
        var out: [QuestionAnswer] = []
        let objects = scene.objects
        for o in objects where scene.objects(with: o.shape).count == 1 {
            out.append(QuestionAnswer(type: .color, question: "What color is the \(o.shape.rawValue)?", answer: o.color.rawValue))
        }
        for o in objects {
            out.append(QuestionAnswer(type: .shape, question: "What shape is the \(o.color.rawValue) object?", answer: o.shape.rawValue))
            out.append(QuestionAnswer(type: .position, question: "Where is the \(o.name)?", answer: positionPhrase(o)))
            out.append(QuestionAnswer(type: .size, question: "What size is the \(o.name)?", answer: o.size.rawValue))
        }
        let shape = ShapeKind.allCases[rng.int(ShapeKind.allCases.count)]
        out.append(QuestionAnswer(type: .count, question: "How many \(shape.rawValue)s are there?",
                                  answer: String(scene.objects(with: shape).count)))
        out.append(QuestionAnswer(type: .count, question: "How many objects are there?", answer: String(objects.count)))
        if objects.count >= 2 {
            let a = objects[0], b = objects[1]
            if Swift.abs(a.x - b.x) > 0.1 {
                out.append(QuestionAnswer(type: .relation, question: "Is the \(a.name) to the left of the \(b.name)?",
                                          answer: a.x < b.x ? "yes" : "no"))
            }
            if Swift.abs(a.y - b.y) > 0.1 {
                out.append(QuestionAnswer(type: .relation, question: "Is the \(a.name) above the \(b.name)?",
                                          answer: a.y < b.y ? "yes" : "no"))
            }
        }
        // Existence: one present object and one absent combination.
        if let present = objects.first {
            out.append(QuestionAnswer(type: .existence, question: "Is there a \(present.name)?", answer: "yes"))
        }
        let color = ObjectColor.allCases[rng.int(ObjectColor.allCases.count)]
        let absentShape = ShapeKind.allCases[rng.int(ShapeKind.allCases.count)]
        let exists = objects.contains { $0.color == color && $0.shape == absentShape }
        out.append(QuestionAnswer(type: .existence, question: "Is there a \(color.rawValue) \(absentShape.rawValue)?",
                                  answer: exists ? "yes" : "no"))
        return out
    }
}
