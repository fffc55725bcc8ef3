using System.Text;
using Hive.Protos.V1;
using Hive.Sbxd.Runtime;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hive.Sbxd.Tests;

/// <summary>The agent's output FIFO and the capped log Sbxd drains it into, with real pipes.</summary>
[CancelAfter(60_000)]
public sealed class AgentOutputTests
{
    private string _dir = null!;
    private SandboxLayout _layout = null!;

    [SetUp]
    public void CreateStateDir()
    {
        _dir = Directory.CreateTempSubdirectory("hive-agent-output-").FullName;
        _layout = new SandboxLayout(_dir, new SandboxSpec { Name = "output" });
    }

    [TearDown]
    public void RemoveStateDir() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void Output_reaches_agent_log_which_is_capped_and_rotated_once()
    {
        using var output = AgentOutput.Open(_layout, NullLogger.Instance);
        using (var writer = new FileStream(output.OpenWriter(), FileAccess.Write, bufferSize: 0))
        {
            var line = Encoding.ASCII.GetBytes(new string('x', 1023) + "\n");
            for (var written = 0L; written < 3 * AgentOutput.MaxBytes; written += line.Length)
            {
                writer.Write(line);
            }

            writer.Write("last line\n"u8);
        }

        output.WaitDrained(TimeSpan.FromSeconds(30));
        var log = new FileInfo(_layout.AgentLog);
        var rotated = new FileInfo(_layout.AgentLog + ".1");
        Assert.That(log.Length, Is.InRange(1, AgentOutput.MaxBytes));
        Assert.That(rotated.Length, Is.InRange(1, AgentOutput.MaxBytes));
        Assert.That(File.ReadAllText(log.FullName), Does.EndWith("last line\n"));
    }

    [Test]
    public void A_writer_outlives_its_reader_and_the_next_reader_reads_on()
    {
        var first = AgentOutput.Open(_layout, NullLogger.Instance);
        using var writer = new FileStream(first.OpenWriter(), FileAccess.Write, bufferSize: 0);
        writer.Write("before\n"u8);
        first.WaitDrained(TimeSpan.FromSeconds(10));
        first.Dispose(); // Sbxd is gone

        // No reader: the write fails at once (EPIPE; SIGPIPE is ignored by .NET, as in the agent), never blocks.
        var broken = Assert.Throws<IOException>(() => writer.Write("lost\n"u8));
        Assert.That(broken!.Message, Does.Contain("Broken pipe"));

        using var second = AgentOutput.Open(_layout, NullLogger.Instance); // Sbxd started again: same FIFO
        writer.Write("after\n"u8);
        second.WaitDrained(TimeSpan.FromSeconds(10));
        var text = File.ReadAllText(_layout.AgentLog);
        Assert.That(text, Does.Contain("before\n").And.Contain("after\n").And.Not.Contain("lost"));
    }

    [Test]
    public void Anything_else_in_the_fifos_place_is_replaced_by_a_fifo()
    {
        File.WriteAllText(_layout.AgentFifo, "a regular file from an older state dir");
        using var output = AgentOutput.Open(_layout, NullLogger.Instance);
        using (var writer = new FileStream(output.OpenWriter(), FileAccess.Write, bufferSize: 0))
        {
            writer.Write("through the fifo\n"u8);
        }

        output.WaitDrained(TimeSpan.FromSeconds(10));
        Assert.That(File.ReadAllText(_layout.AgentLog), Is.EqualTo("through the fifo\n"));
    }
}
