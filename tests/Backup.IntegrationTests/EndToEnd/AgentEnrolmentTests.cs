using System.Runtime.Versioning;
using System.Text;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.EndToEnd;

/// <summary>
/// The one-time enrolment token is a secret until it is redeemed: the real agent takes it from a file (or the environment), so
/// it never stands on the agent's command line, which every local user can read (<c>ps</c>, <c>/proc/&lt;pid&gt;/cmdline</c>).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class AgentEnrolmentTests : IAsyncLifetime
{
    private readonly ProductRun _run = new("enrol");

    public async ValueTask InitializeAsync() => await _run.StartApiAsync();

    [Fact]
    public async Task An_agent_enrols_with_a_token_from_a_file_and_its_command_line_does_not_show_the_token()
    {
        var token = await _run.Client.IssueTokenAsync();
        var tokenFile = Path.Combine(_run.Work.FullName, "enrolment-token");
        await File.WriteAllTextAsync(tokenFile, token + "\n", TestContext.Current.CancellationToken);
        File.SetUnixFileMode(tokenFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var agent = _run.StartAgent("token-file-machine", Path.Combine(_run.Work.FullName, "agent-state"), token: null,
            extraArgs: $"--Agent:EnrolmentTokenFile={tokenFile}");
        await _run.WaitForAgentAsync("token-file-machine", agent);

        var commandLine = Encoding.UTF8.GetString(await File.ReadAllBytesAsync($"/proc/{agent.Id}/cmdline", TestContext.Current.CancellationToken));
        commandLine.ShouldContain("--Agent:EnrolmentTokenFile=");
        commandLine.ShouldNotContain(token.Split('.')[1]);
        agent.HasExited.ShouldBeFalse(agent.Output);
    }

    public ValueTask DisposeAsync() => _run.DisposeAsync();
}
