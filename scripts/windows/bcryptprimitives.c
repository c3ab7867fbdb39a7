/* Test-only stand-in for Windows' bcryptprimitives.dll, for running the tools under Wine 8.
 *
 * Rust's standard library (1.78 and later) takes its random numbers from ProcessPrng in
 * bcryptprimitives.dll, which Windows 10 and later have and Wine 8 does not: without this file
 * every Rust .exe fails to start under Wine. It forwards to BCryptGenRandom with the system's
 * preferred generator, the call Rust used before ProcessPrng. scripts/windows-check.sh builds it
 * with MinGW-w64 and puts it in the private Wine prefix's system32; it is never shipped.
 * ProcessPrng: https://learn.microsoft.com/en-us/windows/win32/seccng/processprng
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* BCryptGenRandom takes a ULONG count: fill larger buffers in pieces. */
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
