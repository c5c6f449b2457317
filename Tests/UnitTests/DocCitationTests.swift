import Foundation
import XCTest

/// Comments cite the repository's own documentation by anchor (`docs/reliability.md#R3`),
/// never a rule by bare number, an issue number, or a file outside the repository. This
/// scans what the code ships (Sources, Tests, scripts, nginx, cron.d, webapp, the README) and fails
/// on a citation whose file or anchor does not exist in `docs/`, and on a citation of
/// something a reader of the repository cannot open. Anchors are the explicit
/// `<a id="…"></a>` tags of the docs, so renaming a heading never breaks one.
final class DocCitationTests: XCTestCase {
    func testEveryCitationResolvesAndNoneLeavesTheRepository() throws {
        let root = try Self.repositoryRoot()
        let anchors = try DocCitations.anchors(docsDirectory: root + "/docs")
        XCTAssertFalse(anchors.isEmpty, "no docs/*.md found under \(root)")
        XCTAssertNotNil(anchors["reliability.md"]?.contains("R1"), "docs/reliability.md must define R1")
        var problems: [String] = []
        var citations = 0
        for path in try DocCitations.scannedFiles(root: root) where !path.hasSuffix("/" + Self.ownFile) {
            guard let text = try? String(contentsOfFile: root + "/" + path, encoding: .utf8) else { continue }
            let found = DocCitations.check(text, path: path, anchors: anchors)
            citations += found.citations
            problems += found.problems
        }
        XCTAssertGreaterThan(citations, 50, "the code cites docs/…#anchors: the scan found too few, so it looked in the wrong place")
        XCTAssertTrue(problems.isEmpty, "citations that do not resolve or leave the repository:\n" + problems.joined(separator: "\n"))
    }

    /// The docs' own links (`[R9](reliability.md#R9)`, `[runbook](runbook.md)`, `(#R3)`)
    /// resolve too, so a reader following them never lands nowhere.
    func testTheDocsOwnLinksResolve() throws {
        let root = try Self.repositoryRoot()
        let anchors = try DocCitations.anchors(docsDirectory: root + "/docs")
        var problems: [String] = []
        var links = 0
        for name in anchors.keys.sorted() {
            let text = try String(contentsOfFile: root + "/docs/" + name, encoding: .utf8)
            for link in DocCitations.groups(DocCitations.markdownLink, in: text) {
                links += 1
                let file = link[1].flatMap { $0.isEmpty ? nil : $0 } ?? name
                if file.hasPrefix("../") {
                    if !FileManager.default.fileExists(atPath: root + "/docs/" + file) { problems.append("docs/\(name): no file \(file)") }
                    continue
                }
                guard let defined = anchors[file] else { problems.append("docs/\(name): no file docs/\(file)"); continue }
                if let anchor = link[2], !defined.contains(anchor) { problems.append("docs/\(name): no anchor \(anchor) in docs/\(file)") }
            }
        }
        XCTAssertGreaterThan(links, 20)
        XCTAssertTrue(problems.isEmpty, problems.joined(separator: "\n"))
    }

    /// The checker itself, on text made to break each rule: a test that can never fail
    /// proves nothing.
    func testTheCheckerRefusesWhatItShould() {
        let anchors: [String: Set<String>] = ["reliability.md": ["R1", "R3"], "runbook.md": []]
        let good = DocCitations.check("""
            // Guarded (docs/reliability.md#R3); see docs/runbook.md. RFC 4648 §5 stays.
            """, path: "a.swift", anchors: anchors)
        XCTAssertEqual(good.problems, [])
        XCTAssertEqual(good.citations, 2)
        let cases = [
            "// see docs/reliability.md#R99": "no anchor R99",
            "// see docs/nowhere.md#R1": "no file docs/nowhere.md",
            // (spelled in pieces, so that this file does not itself cite what it forbids)
            "// fixed for issue" + " 12": "an issue number",
            "// as ../shared/" + "design/style.md says": "a path outside the repository",
            "// shared/" + "reference/x.md": "a path outside the repository",
            "// external-apis.md explains it": "a path outside the repository",
            "// (reliability rule 5)": "a rule by number",
            "// guarded (rule 3)": "a rule by number",
            "// see §1.6": "a section of an outside document",
            "// see reliability.md#R1": "without docs/",
        ]
        for (line, why) in cases {
            let found = DocCitations.check(line, path: "b.swift", anchors: anchors)
            XCTAssertEqual(found.problems.count, 1, "\(why): \(line) → \(found.problems)")
            XCTAssertTrue(found.problems.first?.hasPrefix("b.swift:1: ") == true, "\(found.problems)")
        }
    }

    static let ownFile = "DocCitationTests.swift"

    /// The directory holding `Package.swift`, found upwards from this file.
    static func repositoryRoot(file: String = #filePath) throws -> String {
        var dir = (file as NSString).deletingLastPathComponent
        while dir != "/" && !dir.isEmpty {
            if FileManager.default.fileExists(atPath: dir + "/Package.swift") { return dir }
            dir = (dir as NSString).deletingLastPathComponent
        }
        throw NoRepository(file: file)
    }
}

/// This test file is not inside the repository it checks: a broken checkout, a failure.
struct NoRepository: Error, CustomStringConvertible {
    let file: String
    var description: String { "no Package.swift above \(file)" }
}

/// Finding and checking the citations (no database, no network: file reading only).
enum DocCitations {
    /// What is scanned: everything that ships or runs, and the README.
    static let scannedRoots = ["Sources", "Tests", "scripts", "nginx", "cron.d", "webapp", "deploy"]
    static let scannedTopFiles = ["README.md", "Makefile"]

    /// `docs/<name>.md` → its explicit anchors (`<a id="R3"></a>`).
    static func anchors(docsDirectory: String) throws -> [String: Set<String>] {
        let id = regex(#"<a id="([A-Za-z0-9_-]+)">"#)
        var result: [String: Set<String>] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: docsDirectory) where name.hasSuffix(".md") {
            let text = try String(contentsOfFile: docsDirectory + "/" + name, encoding: .utf8)
            result[name] = Set(groups(id, in: text).compactMap { $0[1] })
        }
        return result
    }

    /// Paths relative to `root`, sorted.
    static func scannedFiles(root: String) throws -> [String] {
        let fm = FileManager.default
        var paths = scannedTopFiles.filter { fm.fileExists(atPath: root + "/" + $0) }
        for dir in scannedRoots where fm.fileExists(atPath: root + "/" + dir) {
            guard let walker = fm.enumerator(atPath: root + "/" + dir) else { continue }
            while let item = walker.nextObject() as? String {
                var isDirectory: ObjCBool = false
                if fm.fileExists(atPath: root + "/" + dir + "/" + item, isDirectory: &isDirectory), !isDirectory.boolValue {
                    paths.append(dir + "/" + item)
                }
            }
        }
        return paths.sorted()
    }

    /// Patterns that cite what a reader of the repository cannot open, with why.
    static let forbidden: [(NSRegularExpression, String)] = [
        (#"(?i)\bissues? #?[0-9]+"#, "cites an issue number: say it in your own words or cite docs/…#anchor"),
        (#"\.\./shared\b|\bshared/(reference|design|seed)\b"#, "cites a path outside the repository"),
        (#"\b(external-apis|original-system|reliability-anchors|stack-notes)\.md"#, "cites a path outside the repository"),
        (#"(?i)\breliability rules? [0-9]|\brules? [0-9]+\b"#, "cites a rule by number: use docs/reliability.md#R<n>"),
        (#"(?<!RFC [0-9]{4} )§ ?[0-9]"#, "cites a section of an outside document: use docs/providers.md#anchor"),
        (#"(?<![A-Za-z0-9_/."-])(architecture|reliability|providers|runbook|http-api|style)\.md\b"#,
         "names a doc without docs/: cite docs/<file>.md#anchor"),
    ].map { (regex($0.0), $0.1) }

    /// A Markdown link to a file in docs/ (or `../README.md`), with an optional anchor; web
    /// links are not matched (their target has a scheme).
    static let markdownLink = regex(#"\]\((?![a-z]+:)([^)#\s]*)(?:#([A-Za-z0-9_-]+))?\)"#)

    static let citation = regex(#"docs/([A-Za-z0-9_-]+\.md)(?:#([A-Za-z0-9_-]+))?"#)

    /// The problems in one file's text (`path:line: why`) and how many citations it holds.
    static func check(_ text: String, path: String, anchors: [String: Set<String>]) -> (problems: [String], citations: Int) {
        var problems: [String] = []
        var citations = 0
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(line)
            let at = "\(path):\(number + 1): "
            for match in groups(citation, in: line) {
                citations += 1
                let file = match[1] ?? ""
                guard let defined = anchors[file] else {
                    problems.append(at + "no file docs/\(file)")
                    continue
                }
                if let anchor = match[2], !defined.contains(anchor) {
                    problems.append(at + "no anchor \(anchor) in docs/\(file)")
                }
            }
            for (pattern, why) in forbidden where !groups(pattern, in: line).isEmpty {
                problems.append(at + why + ": " + line.trimmingCharacters(in: .whitespaces).prefix(160))
            }
        }
        return (problems, citations)
    }

    static func regex(_ pattern: String) -> NSRegularExpression {
        try! NSRegularExpression(pattern: pattern)
    }

    /// Every match's capture groups (index 0: the whole match; nil: a group that took no part).
    static func groups(_ regex: NSRegularExpression, in text: String) -> [[String?]] {
        let ns = text as NSString
        return regex.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { m in
            (0..<m.numberOfRanges).map { i in
                let r = m.range(at: i)
                return r.location == NSNotFound ? nil : ns.substring(with: r)
            }
        }
    }
}
