//! A minimal binding to libnftables: commands run in-process, as one atomic netlink batch per
//! call, with no `nft` process.

use std::ffi::{c_char, c_int, c_void, CStr, CString};

use crate::error::{Error, Result};

#[link(name = "nftables")]
extern "C" {
    fn nft_ctx_new(flags: u32) -> *mut c_void;
    fn nft_ctx_free(ctx: *mut c_void);
    fn nft_ctx_buffer_output(ctx: *mut c_void) -> c_int;
    fn nft_ctx_buffer_error(ctx: *mut c_void) -> c_int;
    fn nft_ctx_get_output_buffer(ctx: *mut c_void) -> *const c_char;
    fn nft_ctx_get_error_buffer(ctx: *mut c_void) -> *const c_char;
    fn nft_run_cmd_from_buffer(ctx: *mut c_void, buf: *const c_char) -> c_int;
}

/// An nftables context with its output and errors captured.
pub struct Nft {
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
        // SAFETY: plain constructor; a null return is handled.
        let ctx = unsafe { nft_ctx_new(0) };
        if ctx.is_null() {
            return Err(Error::Firewall(
                "cannot create an nftables context".to_string(),
            ));
        }
        // SAFETY: ctx is a valid context owned by this value.
        unsafe {
            nft_ctx_buffer_output(ctx);
            nft_ctx_buffer_error(ctx);
        }
        Ok(Nft { ctx })
    }

    /// Runs `commands` (nft syntax, one batch) and returns what it printed.
    pub fn run(&self, commands: &str) -> std::result::Result<String, NftError> {
        let cmd =
            CString::new(commands).map_err(|_| NftError("command holds a NUL byte".to_string()))?;
        // SAFETY: ctx is valid; cmd is a NUL-terminated string that outlives the call; the
        // returned buffers belong to ctx and are copied before the next call.
        unsafe {
            let rc = nft_run_cmd_from_buffer(self.ctx, cmd.as_ptr());
            if rc == 0 {
                Ok(copy(nft_ctx_get_output_buffer(self.ctx)))
            } else {
                let err = copy(nft_ctx_get_error_buffer(self.ctx));
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
        unsafe { nft_ctx_free(self.ctx) }
    }
}
