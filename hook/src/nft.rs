//! A minimal binding to libnftables: commands run in-process, as one atomic netlink batch per
//! call, with no `nft` process. The library is loaded at run time, on first use: most setups
//! never need it (set elements go over nfnetlink directly), and linking it would make every
//! hook start load it and the five libraries behind it.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

use nix::libc;

use crate::error::{Error, Result};

const LIBRARY: &CStr = c"libnftables.so.1";

/// The functions of libnftables ocinet calls.
struct Library {
    ctx_new: unsafe extern "C" fn(u32) -> *mut c_void,
    ctx_free: unsafe extern "C" fn(*mut c_void),
    buffer_output: unsafe extern "C" fn(*mut c_void) -> c_int,
    buffer_error: unsafe extern "C" fn(*mut c_void) -> c_int,
    output_buffer: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    error_buffer: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    run_cmd: unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int,
}

fn library() -> Result<&'static Library> {
    static LOADED: OnceLock<std::result::Result<Library, String>> = OnceLock::new();
    LOADED
        .get_or_init(load)
        .as_ref()
        .map_err(|e| Error::Firewall(e.clone()))
}

fn load() -> std::result::Result<Library, String> {
    // SAFETY: dlopen of a C library by name; the handle is kept for the life of the process.
    let handle = unsafe { libc::dlopen(LIBRARY.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(
            "cannot load libnftables.so.1: install the nftables package (libnftables1)".to_string(),
        );
    }
    // SAFETY: each symbol is the libnftables function of that name, whose C signature the
    // field's type states (libnftables.h).
    unsafe {
        Ok(Library {
            ctx_new: symbol(handle, c"nft_ctx_new")?,
            ctx_free: symbol(handle, c"nft_ctx_free")?,
            buffer_output: symbol(handle, c"nft_ctx_buffer_output")?,
            buffer_error: symbol(handle, c"nft_ctx_buffer_error")?,
            output_buffer: symbol(handle, c"nft_ctx_get_output_buffer")?,
            error_buffer: symbol(handle, c"nft_ctx_get_error_buffer")?,
            run_cmd: symbol(handle, c"nft_run_cmd_from_buffer")?,
        })
    }
}

/// The function `name` of the library, as the function pointer type `F`.
///
/// # Safety
/// `F` must be the function's true signature.
unsafe fn symbol<F: Copy>(handle: *mut c_void, name: &CStr) -> std::result::Result<F, String> {
    // SAFETY: handle is a live dlopen handle; name is NUL-terminated.
    let f = unsafe { libc::dlsym(handle, name.as_ptr()) };
    if f.is_null() {
        return Err(format!(
            "libnftables.so.1 has no {}",
            name.to_string_lossy()
        ));
    }
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: F is a function pointer of the symbol's signature (the caller's promise).
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&f) })
}

/// An nftables context with its output and errors captured.
pub struct Nft {
    lib: &'static Library,
    ctx: *mut c_void,
}

/// Why a batch failed, as libnftables reported it (first line).
#[derive(Debug)]
pub struct NftError(pub String);

impl NftError {
    /// The kernel said an object the batch names does not exist (e.g. our table was flushed).
    pub fn is_missing(&self) -> bool {
        self.0.contains("No such file or directory")
    }
    pub fn is_exists(&self) -> bool {
        self.0.contains("File exists")
    }
}

impl Nft {
    pub fn new() -> Result<Nft> {
        let lib = library()?;
        // SAFETY: plain constructor; a null return is handled.
        let ctx = unsafe { (lib.ctx_new)(0) };
        if ctx.is_null() {
            return Err(Error::Firewall(
                "cannot create an nftables context".to_string(),
            ));
        }
        // SAFETY: ctx is a valid context owned by this value.
        unsafe {
            (lib.buffer_output)(ctx);
            (lib.buffer_error)(ctx);
        }
        Ok(Nft { lib, ctx })
    }

    /// Runs `commands` (nft syntax, one batch) and returns what it printed.
    pub fn run(&self, commands: &str) -> std::result::Result<String, NftError> {
        let cmd =
            CString::new(commands).map_err(|_| NftError("command holds a NUL byte".to_string()))?;
        // SAFETY: ctx is valid; cmd is a NUL-terminated string that outlives the call; the
        // returned buffers belong to ctx and are copied before the next call.
        unsafe {
            let rc = (self.lib.run_cmd)(self.ctx, cmd.as_ptr());
            if rc == 0 {
                Ok(copy((self.lib.output_buffer)(self.ctx)))
            } else {
                let err = copy((self.lib.error_buffer)(self.ctx));
                let first = err
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("failed");
                Err(NftError(first.trim().to_string()))
            }
        }
    }
}

unsafe fn copy(ptr: *const c_char) -> String {
    if ptr.is_null() {
        String::new()
    } else {
        // SAFETY: libnftables returns NUL-terminated buffers.
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    }
}

impl Drop for Nft {
    fn drop(&mut self) {
        // SAFETY: ctx was created by nft_ctx_new and is freed once.
        unsafe { (self.lib.ctx_free)(self.ctx) }
    }
}
