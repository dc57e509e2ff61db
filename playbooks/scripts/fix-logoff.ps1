# fleet-script: fix.logoff
# fleet-version: 1
# Logs off one session (as `logoff <id>`), but only while it is still Disconnected and still
# belongs to the planned user: an Active session is never touched. Idempotent.
param([Parameter(Mandatory)][string]$ParamsJson)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Windows PowerShell 5.1: without this, arrays serialize as {"value":[...],"Count":n}.
try { Remove-TypeData -TypeName System.Array } catch { $null = $_ }

function Write-Frame($doc) {
    # One frame. Non-ASCII is escaped so it survives any console code page, and < > so no value
    # can fake a frame marker (Windows PowerShell's serializer escapes them, PowerShell 7's does not).
    $json = ConvertTo-Json -InputObject $doc -Depth 6 -Compress
    $escape = [System.Text.RegularExpressions.MatchEvaluator] { param($m) '\u{0:x4}' -f [int][char]$m.Value }
    Write-Output ('<<FLEET-JSON>>' + [regex]::Replace($json, '[^\x00-\x7F]|[<>]', $escape) + '<<FLEET-END>>')
}
$p = $ParamsJson | ConvertFrom-Json
$id = [int]$p.session_id
$user = [string]$p.user

Add-Type -Namespace FleetFix -Name Wts -MemberDefinition @'
[DllImport("wtsapi32.dll", SetLastError = true)]
public static extern bool WTSQuerySessionInformation(IntPtr server, int session, int infoClass, out IntPtr buffer, out int bytes);
[DllImport("wtsapi32.dll")]
public static extern void WTSFreeMemory(IntPtr memory);
[DllImport("wtsapi32.dll", SetLastError = true)]
public static extern bool WTSLogoffSession(IntPtr server, int session, bool wait);
'@

function Get-Info([int]$class) {
    $buffer = [IntPtr]::Zero; $bytes = 0
    if (-not [FleetFix.Wts]::WTSQuerySessionInformation([IntPtr]::Zero, $id, $class, [ref]$buffer, [ref]$bytes)) { return $null }
    try {
        if ($class -eq 8) { return [Runtime.InteropServices.Marshal]::ReadInt32($buffer) }
        return [Runtime.InteropServices.Marshal]::PtrToStringUni($buffer)
    } finally { [FleetFix.Wts]::WTSFreeMemory($buffer) }
}

function Get-Session {
    $state = Get-Info 8  # WTSConnectState: 4 = Disconnected
    if ($null -eq $state) { return $null }
    $domain = Get-Info 7
    $name = Get-Info 5
    $who = if ($domain) { "$domain\$name" } else { $name }
    return @{ state = $state; user = $who }
}

$s = Get-Session
$before = if ($s) { @{ id = $id; user = $s.user; state = $s.state } } else { $null }
if ($s -and $s.state -eq 4 -and $s.user -eq $user) {
    [void][FleetFix.Wts]::WTSLogoffSession([IntPtr]::Zero, $id, $true)
}
$s = Get-Session
$after = if ($s) { @{ id = $id; user = $s.user; state = $s.state } } else { $null }
$changed = ($null -ne $before) -and ($null -eq $after)
$change = @{ target = "session $id ($user)"; before = $before; after = $after; changed = $changed }
Write-Frame @{ changes = @($change) }
