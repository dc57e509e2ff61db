# fleet-script: fix.logoff
# fleet-version: 1
# Logs off one session (as `logoff <id>`), but only while it is still Disconnected and still
# belongs to the planned user: an Active session is never touched. Idempotent. Reports the
# session as {id, user, state} with gather.ps1's state names, $null once it is gone.
param([Parameter(Mandatory)][string]$ParamsJson)
# fleet-include: prologue
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

# WTS_CONNECTSTATE_CLASS by value, the names gather.ps1 reports (and fleet's facts use).
$StateNames = @('Active', 'Connected', 'ConnectQuery', 'Shadow', 'Disconnected', 'Idle', 'Listen', 'Reset', 'Down', 'Init')

function Get-Session {
    # The session as {id, user, state name}, or $null when it no longer exists.
    $state = Get-Info 8  # WTSConnectState: 4 = Disconnected
    if ($null -eq $state) { return $null }
    $domain = Get-Info 7
    $name = Get-Info 5
    $who = if ($domain) { "$domain\$name" } else { "$name" }
    $label = if ($state -ge 0 -and $state -lt $StateNames.Count) { $StateNames[$state] } else { "$state" }
    return [ordered]@{ id = $id; user = $who; state = $label }
}

function Test-SameSession($a, $b) {
    if ($null -eq $a -or $null -eq $b) { return ($null -eq $a) -and ($null -eq $b) }
    return ($a.user -eq $b.user) -and ($a.state -eq $b.state)
}

$before = Get-Session
if ($null -ne $before -and $before.state -eq 'Disconnected' -and $before.user -eq $user) {
    # bWait = TRUE: returns once the logoff has completed (WTSLogoffSession, wtsapi32.h).
    $ok = [FleetFix.Wts]::WTSLogoffSession([IntPtr]::Zero, $id, $true)
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
