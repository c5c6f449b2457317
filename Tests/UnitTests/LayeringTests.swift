import Foundation
import PinGlassTesting
import XCTest

/// The targets' seams, checked on the sources' imports (SwiftPM would let an undeclared
/// import through when the module happens to be built already, so the package manifest alone
/// does not hold them): the domain reaches providers only through its own protocols and speaks
/// no HTTP, and the simulator plays the providers with the configuration and their wire
/// formats, never with the payment and job logic.
final class LayeringTests: XCTestCase {
    func testTheDomainImportsNoHTTPClient() throws {
        let imports = try Self.imports(in: ["PinGlass"])
        XCTAssertGreaterThan(imports.files, 50, "the domain's sources were found")
        XCTAssertEqual(imports.lines.filter { ["HTTPClient", "CCurl", "CShims", "Providers"].contains($0.module) }.map(\.line), [])
    }

    /// Targets that must not import the domain.
    static let belowTheDomain = [
        "pinglass-sim", "PinGlassConfig", "ProviderWire", "JSON", "LibCrypto", "Platform", "Postgres",
        "HTTPCore", "HTTPClient", "FastCGI", "SharedCounters", "WebURL",
    ]

    func testTheSimulatorAndTheLayersBelowTheDomainImportNoDomain() throws {
        let imports = try Self.imports(in: Self.belowTheDomain)
        XCTAssertGreaterThan(imports.files, 40, "their sources were found")
        XCTAssertEqual(imports.lines.filter { ["PinGlass", "Providers"].contains($0.module) }.map(\.line), [])
    }

    /// The domain speaks no HTTP: requests, responses and headers are the web target's
    /// (`PinGlassWeb`), which the domain and the layers below it never import.
    func testTheDomainImportsNoHTTPCoreAndNothingBelowTheWebImportsIt() throws {
        let imports = try Self.imports(in: ["PinGlass"] + Self.belowTheDomain)
        XCTAssertGreaterThan(imports.files, 100)
        XCTAssertEqual(imports.lines.filter { entry in
            entry.module == "PinGlassWeb" || (entry.line.hasPrefix("PinGlass/") && ["HTTPCore", "HTTPTypes"].contains(entry.module))
        }.map(\.line), [])
    }

    /// Every `import` line of the targets' sources (`target/file: line`) with the module it names.
    static func imports(in targets: [String]) throws -> (files: Int, lines: [(module: String, line: String)]) {
        let sources = try TestEnvironment.root() + "/Sources/"
        var files = 0
        var lines: [(String, String)] = []
        for target in targets {
            let names = try XCTUnwrap(FileManager.default.enumerator(atPath: sources + target), target)
                .compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
            XCTAssertFalse(names.isEmpty, "\(target)'s sources were found")
            files += names.count
            for name in names {
                let text = try String(contentsOfFile: sources + target + "/" + name, encoding: .utf8)
                for line in text.split(separator: "\n") where line.hasPrefix("import ") || line.hasPrefix("@testable import ") {
                    lines.append((line.split(separator: " ").last.map(String.init) ?? "", "\(target)/\(name): \(line)"))
                }
            }
        }
        return (files, lines)
    }
}
