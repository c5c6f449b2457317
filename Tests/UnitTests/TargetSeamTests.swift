import Foundation
import PinGlassTesting
import XCTest

/// The simulator plays the providers with the configuration and the providers' wire formats,
/// never with the payment and job logic; the generic layers and the shared targets know
/// nothing of the domain. Checked on the sources' imports: SwiftPM lets an undeclared import
/// through when the module happens to be built already, so the manifest alone does not hold it.
final class TargetSeamTests: XCTestCase {
    /// Targets that must not import the domain (`PinGlass`).
    static let belowTheDomain = [
        "pinglass-sim", "PinGlassConfig", "ProviderWire", "JSON", "LibCrypto", "Platform", "Postgres",
        "HTTPCore", "HTTPClient", "FastCGI", "SharedCounters",
    ]

    func testTheSimulatorAndTheSharedTargetsImportNoDomain() throws {
        let root = try TestEnvironment.root() + "/Sources/"
        var offenders: [String] = []
        var seen = 0
        for target in Self.belowTheDomain {
            let files = try XCTUnwrap(FileManager.default.enumerator(atPath: root + target), target)
                .compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
            XCTAssertFalse(files.isEmpty, "\(target)'s sources were found")
            seen += files.count
            for file in files {
                let text = try String(contentsOfFile: root + target + "/" + file, encoding: .utf8)
                for line in text.split(separator: "\n") where line.hasPrefix("import ") || line.hasPrefix("@testable import ") {
                    if line.split(separator: " ").last == "PinGlass" { offenders.append("\(target)/\(file): \(line)") }
                }
            }
        }
        XCTAssertGreaterThan(seen, 40)
        XCTAssertEqual(offenders, [])
    }

    /// The domain speaks no HTTP: requests, responses and headers are the web target's
    /// (`PinGlassWeb`), which the domain and the layers below it never import.
    func testTheDomainImportsNoHTTPCoreAndNothingBelowTheWebImportsIt() throws {
        let root = try TestEnvironment.root() + "/Sources/"
        var offenders: [String] = []
        var seen = 0
        for target in ["PinGlass"] + Self.belowTheDomain {
            let files = try XCTUnwrap(FileManager.default.enumerator(atPath: root + target), target)
                .compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
            seen += files.count
            for file in files {
                let text = try String(contentsOfFile: root + target + "/" + file, encoding: .utf8)
                for line in text.split(separator: "\n") where line.hasPrefix("import ") || line.hasPrefix("@testable import ") {
                    let module = line.split(separator: " ").last ?? ""
                    if module == "PinGlassWeb" || (target == "PinGlass" && (module == "HTTPCore" || module == "HTTPTypes")) {
                        offenders.append("\(target)/\(file): \(line)")
                    }
                }
            }
        }
        XCTAssertGreaterThan(seen, 100)
        XCTAssertEqual(offenders, [])
    }
}
