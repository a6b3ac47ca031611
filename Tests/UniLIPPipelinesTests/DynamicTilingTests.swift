import Foundation
import UniLIPCore
import UniLIPIO
import UniLIPPipelines
import UniLIPTestSupport
import UniLIPText
import XCTest

/// InternVL's dynamic tiling against Tools/reference/fixtures/tiling.py. Grids are compared
/// exactly with InternVL's own rule; tile pixels against PyTorch's antialiased bicubic (our
/// resampler) within one level, and against Pillow's bicubic (what InternVL runs) within a few.
final class DynamicTilingTests: XCTestCase {
    func image(_ t: Tensor) -> Image {
        Image(width: t.shape[1], height: t.shape[0], channels: t.shape[2], pixels: t.scalars.map { UInt8($0) })
    }

    func testCandidateGridsInInternVLOrder() {
        let grids = DynamicTiling.candidateGrids(minTiles: 1, maxTiles: 12)
        XCTAssertEqual(grids.count, 35)   // Σ_{n ≤ 12} divisors(n)
        XCTAssertEqual(grids.prefix(6).map(\.description), ["1×1", "1×2", "2×1", "1×3", "3×1", "1×4"])
        XCTAssertEqual(zip(grids, grids.dropFirst()).filter { $0.count > $1.count }.count, 0)
        let atLeastTwo = DynamicTiling.candidateGrids(minTiles: 2, maxTiles: 6)
        XCTAssertFalse(atLeastTwo.contains(TileGrid(columns: 1, rows: 1)))
        XCTAssertEqual(atLeastTwo.first, TileGrid(columns: 1, rows: 2))
        XCTAssertEqual(DynamicTiling.candidateGrids(minTiles: 1, maxTiles: 1), [TileGrid(columns: 1, rows: 1)])
    }

    func testGridsMatchInternVL() throws {
        let fx = try Fixtures("tiling")
        let cases = fx["grids.cases"], expected = fx["grids.expected"]
        let n = cases.shape[0]
        XCTAssertGreaterThan(n, 100)
        for i in 0..<n {
            let c = (0..<5).map { Int(cases.scalars[i * 5 + $0]) }
            let grid = DynamicTiling.closestGrid(width: c[0], height: c[1], tileSize: c[2], minTiles: c[3], maxTiles: c[4])
            let want = TileGrid(columns: Int(expected.scalars[i * 2]), rows: Int(expected.scalars[i * 2 + 1]))
            XCTAssertEqual(grid, want, "\(c[0])×\(c[1]) tile \(c[2]) tiles \(c[3])...\(c[4])")
        }
        // The area tie-break: 1×1, 2×2 and 3×3 share the ratio of a square image.
        XCTAssertEqual(DynamicTiling.closestGrid(width: 448, height: 448), TileGrid(columns: 1, rows: 1))
        XCTAssertEqual(DynamicTiling.closestGrid(width: 900, height: 900), TileGrid(columns: 2, rows: 2))
        XCTAssertEqual(DynamicTiling.closestGrid(width: 1400, height: 1400), TileGrid(columns: 3, rows: 3))
    }

    func testTilesMatchReference() throws {
        let fx = try Fixtures("tiling")
        let names = ["wide", "tall", "square_tie", "landscape", "no_thumb", "single", "exact"]
        for name in names {
            let p = fx["\(name).params"].scalars.map { Int($0) }
            let (tileSize, minTiles, maxTiles, thumbnail) = (p[0], p[1], p[2], p[3] == 1)
            let input = image(fx["\(name).image"])
            let tiled = DynamicTiling.tile(input, tileSize: tileSize, minTiles: minTiles, maxTiles: maxTiles,
                                           useThumbnail: thumbnail)
            let g = fx["\(name).grid"].scalars.map { Int($0) }
            XCTAssertEqual(tiled.grid, TileGrid(columns: g[0], rows: g[1]), name)
            let torchTiles = fx["\(name).tiles"], pilTiles = fx["\(name).tiles_pil"]
            let count = torchTiles.shape[0], tileBytes = tileSize * tileSize * 3
            XCTAssertEqual(tiled.tiles.count, count, name)
            XCTAssertEqual(tiled.hasThumbnail, thumbnail && tiled.grid.count > 1, name)
            guard tiled.tiles.count == count else { continue }
            for (k, tile) in tiled.tiles.enumerated() {
                XCTAssertEqual(tile.width, tileSize)
                XCTAssertEqual(tile.height, tileSize)
                XCTAssertEqual(tile.channels, 3)
                let torch = torchTiles.scalars[(k * tileBytes)..<((k + 1) * tileBytes)].map { Int($0) }
                let pil = pilTiles.scalars[(k * tileBytes)..<((k + 1) * tileBytes)].map { Int($0) }
                let ours = tile.pixels.map { Int($0) }
                // Float32 against float64 may flip a rounding tie.
                let vsTorch = zip(ours, torch).map { abs($0 - $1) }
                XCTAssertLessThanOrEqual(vsTorch.max() ?? 0, 1, "\(name) tile \(k) vs PyTorch bicubic")
                XCTAssertLessThanOrEqual(vsTorch.filter { $0 > 0 }.count, tileBytes / 50, "\(name) tile \(k): off by one")
                // Pillow rounds between its two passes and uses fixed point.
                XCTAssertLessThanOrEqual(zip(ours, pil).map { abs($0 - $1) }.max() ?? 0, 6, "\(name) tile \(k) vs Pillow")
            }
        }
    }

    func testTilesCoverTheCanvasRowMajor() {
        // A canvas-sized image is cut without resampling: tile (r, c) is the window at (c·t, r·t).
        var pixels = [UInt8](repeating: 0, count: 6 * 4 * 3)
        for y in 0..<4 { for x in 0..<6 { for ch in 0..<3 { pixels[(y * 6 + x) * 3 + ch] = UInt8(y * 40 + x * 6 + ch) } } }
        let img = Image(width: 6, height: 4, channels: 3, pixels: pixels)
        let tiled = DynamicTiling.tile(img, tileSize: 2, maxTiles: 6, useThumbnail: false)
        XCTAssertEqual(tiled.grid, TileGrid(columns: 3, rows: 2))
        XCTAssertEqual(tiled.tiles.count, 6)
        for (k, tile) in tiled.tiles.enumerated() {
            let (r, c) = (k / 3, k % 3)
            for y in 0..<2 { for x in 0..<2 { for ch in 0..<3 {
                XCTAssertEqual(tile[x: x, y: y, c: ch], img[x: c * 2 + x, y: r * 2 + y, c: ch], "tile \(k)")
            } } }
        }
        let withThumb = DynamicTiling.tile(img, tileSize: 2, maxTiles: 6)
        XCTAssertEqual(withThumb.tiles.count, 7)
        XCTAssertTrue(withThumb.hasThumbnail)
        XCTAssertEqual(withThumb.tiles.last, img.resized(width: 2, height: 2, filter: .bicubic))
    }

    func testImagePlaceholder() throws {
        let path = Fixtures.directory.appendingPathComponent("unilip_official/tokenizer.json").path
        let template = try ChatTemplate(tokenizer: Tokenizer(contentsOf: path))
        let ids = template.imagePlaceholder(tiles: 3, tokensPerTile: 4)
        XCTAssertEqual(ids.count, 14)
        XCTAssertEqual(ids.first, template.imgStart)
        XCTAssertEqual(ids.last, template.imgEnd)
        XCTAssertEqual(ids.dropFirst().dropLast().filter { $0 == template.imgContext }.count, 12)
        let text = ChatTemplate.imagePlaceholderText(tiles: 3, tokensPerTile: 4)
        XCTAssertEqual(template.tokenizer.encode(text), ids)
        // The placeholder is what `prompt(_:imageTokens:)` puts before the question.
        let prompt = template.prompt("What is it?", imageTokens: 12)
        XCTAssertEqual(Array(prompt[(prompt.firstIndex(of: template.imgStart) ?? 0)...].prefix(14)), ids)
        XCTAssertEqual(ChatTemplate.imagePlaceholderText(tiles: 1).count,
                       "<img>".count + 256 * "<IMG_CONTEXT>".count + "</img>".count)
    }
}
