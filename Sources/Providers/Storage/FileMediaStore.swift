import LibCrypto
import PinGlass
import Platform
import WebURL

#if canImport(Glibc)
import Glibc
#endif

/// Media as files under `STORAGE_DIR`, served by nginx at `PUBLIC_MEDIA_URL` only with a
/// valid expiring signature (nginx `secure_link`, see nginx/pinglass.conf):
/// `<PUBLIC_MEDIA_URL>/<key>?md5=<sig>&expires=<unix time>`, where `sig` is the unpadded
/// base64url MD5 of `"<expires><uri> <MEDIA_KEY_SECRET>"` and `uri` is `/media/<key>`.
/// MD5 is what nginx's module offers; the secret is what makes the link unforgeable.
///
/// Writes go to a temporary file in the same folder, then `rename`: atomic.
public final class FileMediaStore: MediaStore {
    public let directory: String
    public let publicURL: String
    let secret: String
    /// The path prefix nginx serves the folder at (the `location` of the secure link).
    let uriPrefix: String

    public init(directory: String, publicURL: String, secret: String) {
        self.directory = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.secret = secret
        let path = HTTPURL(self.publicURL)?.path ?? "/media"
        self.uriPrefix = path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    public func put(key: String, bytes: [UInt8], contentType: String) throws {
        let path = try self.path(key)
        let folder = String(path[..<path.lastIndex(of: "/")!])
        do { try System.makeDirectories(folder) } catch { throw MediaStoreError.unavailable("\(error)") }
        let temp = folder + "/.tmp-" + Crypto.hex(Crypto.randomBytes(8))
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw MediaStoreError.unavailable("cannot create \(temp): errno \(errno)") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let e = errno
                close(fd); unlink(temp)
                throw MediaStoreError.unavailable("cannot write \(temp): errno \(e)")
            }
            written += n
        }
        let synced = fsync(fd) == 0
        close(fd)
        guard synced, rename(temp, path) == 0 else {
            let e = errno
            unlink(temp)
            throw MediaStoreError.unavailable("cannot store \(key): errno \(e)")
        }
    }

    public func get(key: String) throws -> [UInt8] {
        let path = try self.path(key)
        guard let bytes = System.readFile(path) else { throw MediaStoreError.notFound(key: key) }
        return bytes
    }

    public func delete(key: String) throws {
        let path = try self.path(key)
        if unlink(path) != 0 && errno != ENOENT { throw MediaStoreError.unavailable("cannot delete \(key): errno \(errno)") }
    }

    public func signedURL(key: String, expiresIn: Int, now: Double) -> String {
        let expires = Int(now) + expiresIn
        let uri = uriPrefix + "/" + key
        let digest = Crypto.md5(Array("\(expires)\(uri) \(secret)".utf8))
        return publicURL + "/" + key + "?md5=" + Crypto.base64URL(digest) + "&expires=\(expires)"
    }

    /// The keys of the last walk of a folder, in order, and the last key a page handed out:
    /// paging through a folder (`after` = the last key of the page before) walks it once.
    private var walked: (prefix: String, keys: [String], next: Int, lastServed: String?)?
    /// Folder walks made (tests see that a pass walks once).
    private(set) var walks = 0

    /// The prefix's folder (files only; the `.tmp-` leftovers of an interrupted `put`
    /// included, so they are found too). A listing without `after` walks the folder once,
    /// recording its keys; the pages that follow (each `after` the last key of the one
    /// before) come from that walk, each entry's time read again when its page is made (an
    /// object gone meanwhile is left out, one written since the walk waits for the next).
    /// Any other `after` walks afresh.
    public func list(prefix: String, after: String?, limit: Int) throws -> [StoredObject] {
        guard prefix.hasSuffix("/"), MediaKeys.isValid(String(prefix.dropLast())) else { return [] }
        if after == nil || walked?.prefix != prefix || walked?.lastServed != after {
            let keys = walk(prefix).sorted()
            let next = after.map { a in keys.firstIndex { $0 > a } ?? keys.count } ?? 0
            walked = (prefix, keys, next, after)
        }
        guard var state = walked else { return [] }
        var page: [StoredObject] = []
        while page.count < limit && state.next < state.keys.count {
            let key = state.keys[state.next]
            state.next += 1
            var st = stat()
            guard lstat(directory + "/" + key, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }   // gone meanwhile
            page.append(StoredObject(key: key, modifiedAt: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9))
        }
        state.lastServed = page.last?.key ?? after
        walked = page.count < limit ? nil : state   // a short page is the last: the walk is done
        return page
    }

    /// The keys of the regular files under the folder, in no particular order.
    func walk(_ prefix: String) -> [String] {
        walks += 1
        var found: [String] = []
        func walk(_ folderKey: String) {
            for name in System.listDirectory(directory + "/" + folderKey) ?? [] {
                let key = folderKey + name
                var st = stat()
                guard lstat(directory + "/" + key, &st) == 0 else { continue }   // gone meanwhile
                switch st.st_mode & S_IFMT {
                case S_IFDIR: walk(key + "/")
                case S_IFREG: found.append(key)
                default: break
                }
            }
        }
        walk(prefix)
        return found
    }

    /// Keys are ours (MediaKeys), but a path never leaves the folder whatever the key.
    func path(_ key: String) throws -> String {
        guard MediaKeys.isValid(key) else { throw MediaStoreError.notFound(key: key) }
        return directory + "/" + key
    }
}

