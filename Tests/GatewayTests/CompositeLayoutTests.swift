import Foundation
@testable import Gateway
import Testing

@Suite("Composite layout")
struct CompositeLayoutTests {
    let layout = CompositeLayout(width: 1280, height: 720)

    @Test("the grid grows 1, 2 side by side, 2×2, 3×2, 3×3, 4×3 as people come")
    func gridSizes() {
        let grids = [1, 2, 3, 4, 5, 6, 7, 9, 10, 12].map { CompositeLayout.grid(count: $0) }
        #expect(grids.map(\.columns) == [1, 2, 2, 2, 3, 3, 3, 3, 4, 4])
        #expect(grids.map(\.rows) == [1, 1, 2, 2, 2, 2, 3, 3, 3, 3])
    }

    @Test("cells never overlap, stay inside the picture, are even, and a short last row is centred")
    func cellsTile() {
        for count in 1...12 {
            let cells = layout.cells(count: count)
            #expect(cells.count == count)
            for (index, cell) in cells.enumerated() {
                #expect(cell.x >= 0 && cell.y >= 0 && cell.x + cell.width <= 1280 && cell.y + cell.height <= 720, "\(count): \(cell)")
                #expect(cell.x % 2 == 0 && cell.y % 2 == 0 && cell.width % 2 == 0 && cell.height % 2 == 0)
                for other in cells[(index + 1)...] {
                    let apart = cell.x + cell.width <= other.x || other.x + other.width <= cell.x
                        || cell.y + cell.height <= other.y || other.y + other.height <= cell.y
                    #expect(apart, "\(count): \(cell) overlaps \(other)")
                }
            }
        }
        // Three: two above, one centred below.
        let three = layout.cells(count: 3)
        #expect(three[2].x == (1280 - three[2].width) / 2 && three[2].y == 360)
    }

    @Test("a featured participant gets all but a fifth of the height; the others share the strip below")
    func featured() {
        let cells = layout.cells(count: 4, featured: 2)
        #expect(cells[2] == CompositeLayout.Cell(x: 0, y: 0, width: 1280, height: 576))
        for index in [0, 1, 3] {
            #expect(cells[index].y == 576 && cells[index].height == 144 && cells[index].width == 256)
        }
        #expect(cells[0].x < cells[1].x && cells[1].x < cells[3].x)
        // Alone, or featured out of range: the plain grid.
        #expect(layout.cells(count: 1, featured: 0) == layout.cells(count: 1))
        #expect(layout.cells(count: 2, featured: 5) == layout.cells(count: 2))
    }
}

@Suite("The speaker layout's voice level")
struct VoiceLevelTests {
    @Test("16-bit samples' level in dBFS: a full-scale sine is about -3, a quiet one -43, silence -120")
    func levels() {
        func sine(amplitude: Double) -> [Int16] {
            (0..<960).map { Int16((amplitude * 32767 * sin(Double($0) * 2 * .pi * 500 / 48000)).rounded()) }
        }
        func level(_ samples: [Int16]) -> Double {
            samples.withUnsafeBytes { CompositeInput.level(ofS16: $0) }
        }
        #expect(abs(level(sine(amplitude: 1)) - -3.01) < 0.1)
        #expect(abs(level(sine(amplitude: 0.01)) - -43.0) < 0.2)
        #expect(level([Int16](repeating: 0, count: 960)) == -120)
        #expect(level([]) == -120)
    }

    @Test("the level follows a voice with a 300 ms time constant, and falls back as it stops")
    func smoothing() {
        let voice = VoiceLevel()
        #expect(voice.dBFS == -120)
        for _ in 0..<5 { voice.add(-20, over: 0.02) }   // 100 ms of talk: a click does not count yet
        #expect(voice.dBFS < -85)
        for _ in 0..<10 { voice.add(-20, over: 0.02) }  // 300 ms: about two thirds of the way
        #expect(voice.dBFS > -60 && voice.dBFS < -50)
        for _ in 0..<35 { voice.add(-20, over: 0.02) }  // a second
        #expect(voice.dBFS > -25)
        for _ in 0..<50 { voice.add(-120, over: 0.02) } // a second of silence
        #expect(voice.dBFS < -115)
    }
}
