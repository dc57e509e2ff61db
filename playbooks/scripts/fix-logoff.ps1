# fleet-script: fix.logoff
# fleet-version: 2
# Logs off one session (as `logoff <id>`), but only while it is still Disconnected and still
# belongs to the planned user: an Active session is never touched. Idempotent. Reports the
# session as {id, user, state} with gather.ps1's state names, $null once it is gone.
# The planned user is DOMAIN\name when gather read the WTS API, or a bare name when it fell
# back to quser (which prints no domain): a bare name is compared with the session's user name
# only. Names compare case-insensitively (-eq), as Windows compares account names.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
$p = $ParamsJson | ConvertFrom-Json
$id = [int]$p.session_id
$user = [string]$p.user
# Session 0 holds services, never a user; an empty name would match the sessions without one.
if ($id -le 0) { throw "fix.logoff: session_id must be a user session (1 or more), not $id" }
if (-not $user.Trim()) { throw 'fix.logoff: user is required' }

# The W (Unicode) exports, bound as gather.ps1 binds them. Without CharSet/EntryPoint, C#
# defaults to CharSet.Ansi and binds WTSQuerySessionInformationA, whose ANSI text
# PtrToStringUni then misreads: the user never matched and nobody was logged off.
# https://learn.microsoft.com/dotnet/standard/native-interop/specifying-a-character-set
# https://learn.microsoft.com/windows/win32/api/wtsapi32/nf-wtsapi32-wtsquerysessioninformationw
# https://learn.microsoft.com/windows/win32/api/wtsapi32/nf-wtsapi32-wtslogoffsession
# The type is named WtsW so that a runspace which compiled version 1's (ANSI) Wts type cannot clash.
Add-Type -Namespace FleetFix -Name WtsW -MemberDefinition @'
[DllImport("wtsapi32.dll", EntryPoint = "WTSQuerySessionInformationW", CharSet = CharSet.Unicode, SetLastError = true)]
public static extern bool WTSQuerySessionInformation(IntPtr server, int session, int infoClass, out IntPtr buffer, out int bytes);
[DllImport("wtsapi32.dll")]
public static extern void WTSFreeMemory(IntPtr memory);
[DllImport("wtsapi32.dll", SetLastError = true)]
public static extern bool WTSLogoffSession(IntPtr server, int session, bool wait);
'@

# WTS_INFO_CLASS (learn.microsoft.com/windows/win32/api/wtsapi32/ne-wtsapi32-wts_info_class).
$WTSUserName = 5; $WTSDomainName = 7; $WTSConnectState = 8

function Get-Info([int]$class) {
    $buffer = [IntPtr]::Zero; $bytes = 0
    if (-not [FleetFix.WtsW]::WTSQuerySessionInformation([IntPtr]::Zero, $id, $class, [ref]$buffer, [ref]$bytes)) { return $null }
    try {
        if ($class -eq $WTSConnectState) { return [Runtime.InteropServices.Marshal]::ReadInt32($buffer) }
        return [Runtime.InteropServices.Marshal]::PtrToStringUni($buffer)
    } finally { [FleetFix.WtsW]::WTSFreeMemory($buffer) }
}

# WTS_CONNECTSTATE_CLASS by value, the names gather.ps1 reports (and fleet's facts use).
$StateNames = @('Active', 'Connected', 'ConnectQuery', 'Shadow', 'Disconnected', 'Idle', 'Listen', 'Reset', 'Down', 'Init')

function Get-Session {
    # The session as {id, user, state name}, or $null when it no longer exists.
    $state = Get-Info $WTSConnectState  # 4 = Disconnected
    if ($null -eq $state) { return $null }
    $domain = Get-Info $WTSDomainName
    $name = Get-Info $WTSUserName
    $who = if ($domain) { "$domain\$name" } else { "$name" }
    $label = if ($state -ge 0 -and $state -lt $StateNames.Count) { $StateNames[$state] } else { "$state" }
    return [ordered]@{ id = $id; user = $who; state = $label }
}

function Test-PlannedUser($session) {
    if ($user.Contains('\')) { return $session.user -eq $user }
    $name = ([string]$session.user).Split('\')[-1]
    return $name -and ($name -eq $user)
}

function Test-SameSession($a, $b) {
    if ($null -eq $a -or $null -eq $b) { return ($null -eq $a) -and ($null -eq $b) }
    return ($a.user -eq $b.user) -and ($a.state -eq $b.state)
}

$before = Get-Session
if ($null -ne $before -and $before.state -eq 'Disconnected' -and (Test-PlannedUser $before)) {
    # bWait = TRUE: returns once the logoff has completed (WTSLogoffSession, wtsapi32.h).
    $ok = [FleetFix.WtsW]::WTSLogoffSession([IntPtr]::Zero, $id, $true)
    $code = [Runtime.InteropServices.Marshal]::GetLastWin32Error()
    $after = Get-Session
    if (-not $ok -and (Test-SameSession $before $after)) {
        throw "WTSLogoffSession($id) failed: $((New-Object ComponentModel.Win32Exception $code).Message)"
    }
}
else {
    $after = $before  # gone, reconnected or reused by someone else: never touched
}
$change = @{ target = "session $id ($user)"; before = $before; after = $after; changed = -not (Test-SameSession $before $after) }
Write-Frame @{ changes = @($change) }
