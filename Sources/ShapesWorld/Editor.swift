import UniLIPCore

public enum EditType: String, Codable, CaseIterable, Sendable {
    case recolor, add, remove, replace, move, background
}

/// An edit triple: the instruction, and the scene before and after. Parts of the scene the
/// instruction does not mention are identical in both (same background pattern and noise).
public struct Edit: Codable, Equatable, Sendable {
    public let type: EditType
    public let instruction: String
    public let before: Scene
    public let after: Scene
}

/// Builds one edit of each type that applies to a scene.
public enum Editor {
    static let cellCenters: [(String, Double, Double)] = {
        var out: [(String, Double, Double)] = []
        for (row, y) in [("top", 1.0 / 6), ("middle", 0.5), ("bottom", 5.0 / 6)] {
            for (column, x) in [("left", 1.0 / 6), ("center", 0.5), ("right", 5.0 / 6)] {
                let name = row == "middle" && column == "center" ? "center" : "\(row) \(column)"
                out.append((name, x, y))
            }
        }
        return out
    }()

    public static func edits(for scene: Scene, allowHeldOut: Bool, rng: inout RandomGenerator) -> [Edit] {
        var out: [Edit] = []
        let objects = scene.objects
        func allowed(_ c: ObjectColor, _ s: ShapeKind) -> Bool { allowHeldOut || !ShapesWorld.isHeldOut(c, s) }
        func edit(_ type: EditType, _ text: String, _ objects: [SceneObject], background: Background? = nil) {
            out.append(Edit(type: type, instruction: text, before: scene,
                            after: Scene(background: background ?? scene.background, objects: objects)))
        }
        let target = rng.int(objects.count)
        let o = objects[target]
        let freeColors = ObjectColor.allCases.filter { !scene.usedColors.contains($0) }

        // Recolour.
        let recolors = freeColors.filter { allowed($0, o.shape) }
        if !recolors.isEmpty {
            let c = recolors[rng.int(recolors.count)]
            var changed = objects
            changed[target].color = c
            edit(.recolor, "Make the \(o.name) \(c.rawValue).", changed)
        }
        // Remove (keep at least one object).
        if objects.count > 1 {
            var changed = objects
            changed.remove(at: target)
            edit(.remove, "Remove the \(o.name).", changed)
        }
        // Replace the shape, keeping colour, size and position.
        let shapes = ShapeKind.allCases.filter { $0 != o.shape && allowed(o.color, $0) }
        if !shapes.isEmpty {
            let s = shapes[rng.int(shapes.count)]
            var changed = objects
            changed[target].shape = s
            edit(.replace, "Replace the \(o.name) with a \(o.color.rawValue) \(s.rawValue).", changed)
        }
        // Move to the centre of another cell, where it fits.
        let others = objects.enumerated().filter { $0.offset != target }.map(\.element)
        let cells = cellCenters.filter { cell in
            cell.0 != Captioner.positionPhrase(o) && fits(o.size, at: (cell.1, cell.2), among: others)
        }
        if !cells.isEmpty {
            let cell = cells[rng.int(cells.count)]
            var changed = objects
            changed[target].x = cell.1
            changed[target].y = cell.2
            edit(.move, "Move the \(o.name) to the \(cell.0).", changed)
        }
        // Add a new object in a free cell.
        if objects.count < 4, !freeColors.isEmpty {
            let c = freeColors[rng.int(freeColors.count)]
            let shapes = ShapeKind.allCases.filter { allowed(c, $0) }
            let s = shapes[rng.int(shapes.count)]
            let size = SizeClass.allCases[rng.int(SizeClass.allCases.count)]
            let spots = cellCenters.filter { fits(size, at: ($0.1, $0.2), among: objects) }
            if !spots.isEmpty {
                let spot = spots[rng.int(spots.count)]
                let added = SceneObject(shape: s, color: c, size: size, x: spot.1, y: spot.2)
                edit(.add, "Add a \(size.rawValue) \(added.name) at the \(spot.0).", objects + [added])
            }
        }
        // Change the background pattern.
        var bg = ShapesWorld.randomBackground(rng: &rng)
        while bg.kind == scene.background.kind {
            bg.kind = BackgroundKind.allCases[rng.int(BackgroundKind.allCases.count)]
        }
        edit(.background, "Change the background to a \(bg.adjective) one.", objects, background: bg)
        return out
    }

    static func fits(_ size: SizeClass, at p: (Double, Double), among others: [SceneObject]) -> Bool {
        let r = size.radius
        guard p.0 >= r && p.0 <= 1 - r && p.1 >= r && p.1 <= 1 - r else { return false }
        return others.allSatisfy { o in
            ((o.x - p.0) * (o.x - p.0) + (o.y - p.1) * (o.y - p.1)).squareRoot() >= (o.size.radius + r) * 0.95
        }
    }
}
