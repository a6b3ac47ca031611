import UniLIPIO

/// A tiling layout: `columns` × `rows` tiles.
public struct TileGrid: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let columns: Int
    public let rows: Int

    public init(columns: Int, rows: Int) {
        precondition(columns > 0 && rows > 0, "tile grid \(columns)×\(rows): both sides must be positive")
        self.columns = columns
        self.rows = rows
    }

    public var count: Int { columns * rows }
    public var description: String { "\(columns)×\(rows)" }
}

/// An image cut into tiles by `DynamicTiling.tile`.
public struct TiledImage: Sendable {
    /// The grid the image was resized to and cut along.
    public let grid: TileGrid
    /// `grid.count` tiles, row-major (left to right, then top to bottom), then the thumbnail if any.
    public let tiles: [Image]
    /// Whether the last tile is the whole image resized to one tile.
    public let hasThumbnail: Bool
}

/// InternVL's dynamic high-resolution preprocessing (`dynamic_preprocess` in the InternVL chat code,
/// used by InternVL3 and VLMEvalKit): pick the tile grid whose aspect ratio is closest to the
/// image's, resize the image to that canvas (bicubic), cut it into square tiles, and append a
/// thumbnail of the whole image when there is more than one tile.
public enum DynamicTiling {
    /// Every grid with `minTiles ≤ columns·rows ≤ maxTiles`, ordered by tile count; equal counts
    /// keep columns-outer, rows-inner order. (InternVL sorts a Python set, whose order among equal
    /// counts differs, but the choice of grid is the same: checked exhaustively on small sizes
    /// in Tools/reference/fixtures/tiling.py.)
    public static func candidateGrids(minTiles: Int = 1, maxTiles: Int = 12) -> [TileGrid] {
        precondition(minTiles >= 1 && maxTiles >= minTiles, "tiles: need 1 ≤ minTiles (\(minTiles)) ≤ maxTiles (\(maxTiles))")
        var grids: [TileGrid] = []
        for columns in 1...maxTiles {
            for rows in 1...maxTiles where columns * rows >= minTiles && columns * rows <= maxTiles {
                grids.append(TileGrid(columns: columns, rows: rows))
            }
        }
        // A stable sort by count (Swift's sort is not guaranteed stable: sort by (count, index)).
        return grids.enumerated().sorted { a, b in
            a.element.count != b.element.count ? a.element.count < b.element.count : a.offset < b.offset
        }.map(\.element)
    }

    /// The grid InternVL's `find_closest_aspect_ratio` picks for a `width` × `height` image: the
    /// smallest |width/height − columns/rows|; on an exact tie a later (larger) grid wins when the
    /// image area exceeds half of its canvas (tileSize² · columns · rows).
    public static func closestGrid(width: Int, height: Int, tileSize: Int = 448,
                                   minTiles: Int = 1, maxTiles: Int = 12) -> TileGrid {
        precondition(width > 0 && height > 0, "tiling a \(width)×\(height) image: size must be positive")
        precondition(tileSize > 0, "tile size \(tileSize) must be positive")
        let aspect = Double(width) / Double(height)
        let area = Double(width) * Double(height)
        var bestDiff = Double.infinity
        var best = TileGrid(columns: 1, rows: 1)
        for grid in candidateGrids(minTiles: minTiles, maxTiles: maxTiles) {
            let diff = abs(aspect - Double(grid.columns) / Double(grid.rows))
            if diff < bestDiff {
                bestDiff = diff
                best = grid
            } else if diff == bestDiff && area > 0.5 * Double(tileSize) * Double(tileSize) * Double(grid.count) {
                best = grid
            }
        }
        return best
    }

    /// Tiles of `image` as InternVL feeds them to its vision encoder (each `tileSize` × `tileSize`).
    /// Resizing uses `Image.resized(filter: .bicubic)` (PyTorch's antialiased bicubic; InternVL
    /// calls Pillow's bicubic, which differs by a few levels on some pixels).
    public static func tile(_ image: Image, tileSize: Int = 448, minTiles: Int = 1, maxTiles: Int = 12,
                            useThumbnail: Bool = true) -> TiledImage {
        let grid = closestGrid(width: image.width, height: image.height, tileSize: tileSize,
                               minTiles: minTiles, maxTiles: maxTiles)
        let canvas = image.resized(width: tileSize * grid.columns, height: tileSize * grid.rows, filter: .bicubic)
        var tiles: [Image] = []
        tiles.reserveCapacity(grid.count + 1)
        for row in 0..<grid.rows {
            for column in 0..<grid.columns {
                tiles.append(crop(canvas, x: column * tileSize, y: row * tileSize, width: tileSize, height: tileSize))
            }
        }
        let thumbnail = useThumbnail && tiles.count > 1
        if thumbnail {
            tiles.append(image.resized(width: tileSize, height: tileSize, filter: .bicubic))
        }
        return TiledImage(grid: grid, tiles: tiles, hasThumbnail: thumbnail)
    }

    /// The `width` × `height` window of `image` whose top-left corner is (`x`, `y`).
    static func crop(_ image: Image, x: Int, y: Int, width: Int, height: Int) -> Image {
        precondition(x >= 0 && y >= 0 && x + width <= image.width && y + height <= image.height,
                     "crop \(width)×\(height) at (\(x), \(y)) outside a \(image.width)×\(image.height) image")
        if x == 0 && y == 0 && width == image.width && height == image.height { return image }
        let c = image.channels
        let rowBytes = width * c
        var pixels = [UInt8](repeating: 0, count: height * rowBytes)
        image.pixels.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                for r in 0..<height {
                    let from = ((y + r) * image.width + x) * c
                    for i in 0..<rowBytes { dst[r * rowBytes + i] = src[from + i] }
                }
            }
        }
        return Image(width: width, height: height, channels: c, pixels: pixels)
    }
}

extension ChatTemplate {
    /// InternVL's placeholder for one image cut into `tiles` tiles (thumbnail included):
    /// `<img>` + tiles·tokensPerTile × `<IMG_CONTEXT>` + `</img>`, all tiles in one block.
    public func imagePlaceholder(tiles: Int, tokensPerTile: Int = 256) -> [Int] {
        precondition(tiles > 0 && tokensPerTile > 0, "image placeholder: \(tiles) tiles × \(tokensPerTile) tokens")
        return [imgStart] + [Int](repeating: imgContext, count: tiles * tokensPerTile) + [imgEnd]
    }

    /// The same placeholder as text, for prompts that are tokenised whole.
    public static func imagePlaceholderText(tiles: Int, tokensPerTile: Int = 256) -> String {
        precondition(tiles > 0 && tokensPerTile > 0, "image placeholder: \(tiles) tiles × \(tokensPerTile) tokens")
        return "<img>" + String(repeating: "<IMG_CONTEXT>", count: tiles * tokensPerTile) + "</img>"
    }
}
