/// Where each participant goes in a composite picture: a grid that re-flows as people come and go, or,
/// while one of them is featured (sharing a screen), that one in the large area and the others in a
/// strip below it.
///
/// Cells are whole even pixels (I420 halves the chroma planes) and never overlap; a picture keeps its
/// aspect ratio inside its cell (the compositor scales it with `sizing-policy=keep-aspect-ratio`).
///
/// ```swift
/// let layout = CompositeLayout(width: 1280, height: 720)
/// layout.cells(count: 3)                 // 2×2 grid, the last row centred
/// layout.cells(count: 3, featured: 1)    // participant 1 large, 0 and 2 in the strip
/// ```
public struct CompositeLayout: Sendable, Equatable {
    public struct Cell: Sendable, Equatable, CustomStringConvertible {
        public var x: Int
        public var y: Int
        public var width: Int
        public var height: Int

        public init(x: Int, y: Int, width: Int, height: Int) {
            self.x = x
            self.y = y
            self.width = width
            self.height = height
        }

        public var description: String { "\(width)x\(height)+\(x)+\(y)" }
    }

    public let width: Int
    public let height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    /// Columns and rows of the grid for `count` cells: 1, 2 side by side, 2×2, 3×2, 3×3, 4×3, 4×4 …
    public static func grid(count: Int) -> (columns: Int, rows: Int) {
        guard count > 1 else { return (1, 1) }
        var columns = 1
        while columns * columns < count { columns += 1 }
        let rows = (count + columns - 1) / columns
        return (columns, rows)
    }

    /// One cell per participant, in order. `featured` (an index) gets the large area and the others a strip.
    public func cells(count: Int, featured: Int? = nil) -> [Cell] {
        guard count > 0 else { return [] }
        if let featured, featured >= 0, featured < count, count > 1 {
            return featuredCells(count: count, featured: featured)
        }
        return gridCells(count: count, in: Cell(x: 0, y: 0, width: width, height: height))
    }

    private func gridCells(count: Int, in area: Cell) -> [Cell] {
        let (columns, rows) = Self.grid(count: count)
        let cellWidth = Self.evenSize(area.width / columns)
        let cellHeight = Self.evenSize(area.height / rows)
        // The grid is centred in the area, and so is a last row that is not full.
        let top = area.y + (area.height - cellHeight * rows) / 2
        var cells: [Cell] = []
        for index in 0..<count {
            let row = index / columns
            let inRow = row == rows - 1 ? count - columns * (rows - 1) : columns
            let left = area.x + (area.width - cellWidth * inRow) / 2
            cells.append(Cell(x: Self.even(left + (index % columns) * cellWidth), y: Self.even(top + row * cellHeight),
                              width: cellWidth, height: cellHeight))
        }
        return cells
    }

    /// The featured participant above, the others in one strip along the bottom (a fifth of the height,
    /// 16:9 cells, narrower if there are many).
    private func featuredCells(count: Int, featured: Int) -> [Cell] {
        let stripHeight = Self.evenSize(height / 5)
        let others = count - 1
        let stripCellWidth = Self.evenSize(min(stripHeight * 16 / 9, width / others))
        let main = Cell(x: 0, y: 0, width: width, height: Self.evenSize(height - stripHeight))
        let left = (width - stripCellWidth * others) / 2
        var cells: [Cell] = []
        var slot = 0
        for index in 0..<count {
            if index == featured {
                cells.append(main)
            } else {
                cells.append(Cell(x: Self.even(left + slot * stripCellWidth), y: main.height, width: stripCellWidth,
                                  height: stripHeight))
                slot += 1
            }
        }
        return cells
    }

    /// A position rounded down to an even pixel.
    static func even(_ value: Int) -> Int { max(0, value) & ~1 }
    /// A size rounded down to an even pixel, never empty.
    static func evenSize(_ value: Int) -> Int { max(2, value & ~1) }
}
