using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace Hive.Agent.Init;

/// <summary>
/// The sandbox must not be able to stop or restart its init at will: the web host's console lifetime
/// turns SIGTERM, SIGINT and SIGQUIT into a shutdown, so root inside could restart the container —
/// and every sidecar reopening its resources with it — with a plain <c>kill</c>. The agent's host has
/// no console lifetime (<see cref="InitHost"/>), and these handlers cancel the runtime's own default
/// (restore the default action, raise the signal again) and report the first of each kind. Sbxd
/// stops the container from outside with SIGKILL, which the kernel always delivers from an ancestor
/// pid namespace.
/// </summary>
/// <remarks>
/// Inside the container the kernel drops every signal sent to the namespace's init that has no
/// handler (pid_namespaces(7); SIGKILL and SIGSTOP included), so re-raising would be harmless there;
/// cancelling keeps an agent started anywhere else (tests, by hand) alive too. The runtime's fault
/// handlers (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT) cannot be given up; the sandbox's
/// seccomp filter refuses to send those to any process instead (see Sbxd's SeccompProfile.Signals).
/// </remarks>
internal sealed partial class StopSignals : IDisposable
{
    private static readonly PosixSignal[] Ignored = [PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGQUIT, PosixSignal.SIGHUP];

    private readonly List<PosixSignalRegistration> _registrations = [];
    private readonly int[] _logged = new int[Ignored.Length];

    private StopSignals()
    {
        foreach (var signal in Ignored)
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, OnSignal));
        }
    }

    /// <summary>Where ignored signals are reported (the first of each kind only: the sandbox could send them in a loop).</summary>
    public ILogger? Logger { get; set; }

    /// <summary>Installs the handlers; as early as possible, before the host registers its own.</summary>
    public static StopSignals Ignore() => new();

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }
    }

    private void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true;
        var kind = Array.IndexOf(Ignored, context.Signal);
        if (Logger is { } logger && kind >= 0 && Interlocked.Exchange(ref _logged[kind], 1) == 0)
        {
            LogIgnored(logger, context.Signal);
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Ignored {Signal}: the sandbox cannot stop its init (more of it are ignored silently)")]
    private static partial void LogIgnored(ILogger logger, PosixSignal signal);
}
