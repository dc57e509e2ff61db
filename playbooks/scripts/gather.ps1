# fleet-script: gather
# fleet-version: 2
#
# Gathers the facts the selected checks need, in one round trip, and prints them as ONE frame:
# <<FLEET-JSON>>{...}<<FLEET-END>>. The JSON keys are the field names of fleet/facts.py exactly
# (a test compares every hashtable key below with that model, so only emitted objects may be
# hashtable literals here). Parameters: {"sections": ["os", "cert", ...], "deadline_s": 24,
# "section_budget_s": 12}; without "sections" every section is gathered. A section that fails,
# or runs out of time, is left out and named in "errors"; the frame is written in every case.
# Runs on Windows PowerShell 5.1 and PowerShell 7: no ??, no ternary, no -AsHashtable.
param([Parameter(Mandatory)][string]$ParamsJson)

# The section library: everything a section needs (settings, paths, helpers, $Gatherers). It
# is a script block so that each section can run in a worker runspace of its own (see the main
# loop at the end), which loads it from this text; this runspace dot-sources it too. Its body is
# left unindented so that the sections read as before.
$SectionLibrary = {
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Under an AppLocker / WDAC policy PowerShell runs in ConstrainedLanguage: only core types may
# be used, so .NET method calls (registry reads, the frame writer's regex evaluator) and
# Add-Type of C# fail, and over SSH even the [scriptblock]::Create that starts this script does
# (about_Language_Modes, https://learn.microsoft.com/powershell/module/microsoft.powershell.core/about/about_language_modes).
# Say so instead of failing later with an obscure error.
if ($ExecutionContext.SessionState.LanguageMode -ne 'FullLanguage') {
    throw "fleet gather: PowerShell runs in $($ExecutionContext.SessionState.LanguageMode) mode (an AppLocker/WDAC policy or a constrained endpoint); fleet's scripts need FullLanguage (Add-Type, .NET method calls)"
}
# Windows PowerShell 5.1 attaches an ETS Count property to System.Array, which makes
# ConvertTo-Json write some arrays as {"value":[...],"Count":n}. PowerShell 7 has no such data.
try { Remove-TypeData -TypeName System.Array } catch { $null = $_ }

$TerminalServer = 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server'
$RdpTcp = 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp'
$RdpPolicyKey = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services'
$Tls12Server = 'HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Server'
$CredSspKey = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System\CredSSP\Parameters'
$FirewallPolicyKey = 'HKLM:\SOFTWARE\Policies\Microsoft\WindowsFirewall'
$LocalRuleStore = 'HKLM:\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules'
$W32TimeKey = 'HKLM:\SYSTEM\CurrentControlSet\Services\W32Time'
$W32TimePolicyKey = 'HKLM:\SOFTWARE\Policies\Microsoft\W32Time'
$CbsKey = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing'
$WindowsUpdateKey = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update'
$SessionManagerKey = 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager'

function Get-RegDword {
    # A registry value as [int], or $null when the key or the value is absent.
    param([string]$Path, [string]$Name)
    if (-not (Test-Path -LiteralPath $Path)) { return $null }
    $value = (Get-Item -LiteralPath $Path).GetValue($Name)
    if ($null -eq $value) { return $null }
    return [int]$value
}

function Get-IsoUtc {
    param([datetime]$Value)
    return $Value.ToUniversalTime().ToString('o')
}

function Invoke-NativeText {
    # Standard output of a native program as one string. Standard error is dropped: with
    # $ErrorActionPreference = 'Stop', Windows PowerShell turns redirected stderr lines into
    # terminating errors, and quser writes "No User exists for *" there (exit 1) when nobody is
    # logged on. The caller reads $global:LASTEXITCODE when the exit code matters.
    param([string]$Program, [string[]]$Arguments)
    $command = Get-Command -Name $Program -CommandType Application -ErrorAction Stop | Select-Object -First 1
    $ErrorActionPreference = 'Continue'
    $lines = @(& $command @Arguments 2>&1 | Where-Object {
            $_ -isnot [System.Management.Automation.ErrorRecord]
        } | ForEach-Object { [string]$_ })
    return ($lines -join "`n")
}

function Get-RegString {
    # A registry value as [string], or $null when the key or the value is absent.
    param([string]$Path, [string]$Name)
    if (-not (Test-Path -LiteralPath $Path)) { return $null }
    $value = (Get-Item -LiteralPath $Path).GetValue($Name)
    if ($null -eq $value) { return $null }
    return [string]$value
}

function Get-RegUInt32 {
    # A REG_DWORD as unsigned: .NET reads it as Int32, so 0xFFFFFFFF arrives as -1.
    param([string]$Path, [string]$Name)
    $value = Get-RegDword $Path $Name
    if ($null -eq $value) { return $null }
    if ($value -lt 0) { return [long]$value + 4294967296 }
    return [long]$value
}

function Get-W32TimeConfig {
    # Parameters\Type and NtpServer, Config\MaxPos/MaxNegPhaseCorrection under one root: the
    # service's own key, or the Group Policy area whose values overwrite it ("Windows Time
    # service tools and settings": policies under HKLM\SOFTWARE\Policies\Microsoft\W32Time,
    # subkeys Config and Parameters). Registry values, so nothing localized.
    param([string]$Root)
    [ordered]@{
        type                     = Get-RegString "$Root\Parameters" 'Type'
        ntp_server               = Get-RegString "$Root\Parameters" 'NtpServer'
        max_pos_phase_correction = Get-RegUInt32 "$Root\Config" 'MaxPosPhaseCorrection'
        max_neg_phase_correction = Get-RegUInt32 "$Root\Config" 'MaxNegPhaseCorrection'
    }
}

function Get-TimeSyncRun {
    # The latest run of the "Time Synchronization" scheduled tasks, which start W32Time on
    # workgroup hosts (KB2385818: "at 01:00 a.m. every Sunday"), as its ScheduledTaskInfo:
    # DateTime and number, no text. A task that never ran reports a LastRunTime in 1999.
    $latest = $null
    foreach ($task in @(Get-ScheduledTask -TaskPath '\Microsoft\Windows\Time Synchronization\' -ErrorAction Stop)) {
        $info = $task | Get-ScheduledTaskInfo -ErrorAction Stop
        if ($null -eq $info.LastRunTime -or $info.LastRunTime.Year -lt 2000) { continue }
        if ($null -eq $latest -or $info.LastRunTime -gt $latest.LastRunTime) { $latest = $info }
    }
    return $latest
}

function Get-ForestRoot {
    # On a domain controller: is its domain the forest root? RootDSE rootDomainNamingContext is
    # "the first domain in the forest", defaultNamingContext "the domain of which this directory
    # server is a member" (win32 desktop-src/ADSchema/rootdse.md). $null when unknown.
    try {
        $rootDse = ([ADSI]'LDAP://RootDSE').psbase
        $root = [string]$rootDse.Properties['rootDomainNamingContext'].Value
        $domain = [string]$rootDse.Properties['defaultNamingContext'].Value
        if (-not $root -or -not $domain) { return $null }
        return ($root -eq $domain)
    }
    catch { return $null }
}

# Listener certificate helpers: Get-MachineCert, Get-CertKeyFile, Test-NetworkServiceRead,
# Get-EkuOids; Get-CertTemplateId, Find-AdTemplate.
# fleet-include: certkey
# fleet-include: certtemplate

function Get-KeyReadable {
    # Whether NETWORK SERVICE may read the certificate's private key: $true / $false, or $null
    # when unknown (no key, key file not found, ACL not readable): unknown is not "no".
    param($Cert)
    try {
        $file = Get-CertKeyFile $Cert
        if ($null -eq $file) { return $null }
        return [bool](Test-NetworkServiceRead $file)
    } catch { return $null }
}

function Get-DeclaredValue {
    # One registry value a playbook declares (fleet/checks/declared.py), read as the built-in
    # sections read theirs: RegistryKey.GetValue takes the name literally and, with
    # DoNotExpandEnvironmentNames, leaves REG_EXPAND_SZ as written; GetValueKind names its type
    # (learn.microsoft.com/dotnet/api/microsoft.win32.registrykey.getvaluekind). DWORD and
    # QWORD unsigned (.NET reads them signed), REG_MULTI_SZ a list, REG_BINARY hex. A value that
    # cannot be read (access denied) is reported with why; the others are still read.
    param([string]$Path, [string]$Name)
    $kind = $null
    $value = $null
    $problem = $null
    try {
        if (-not $Path.StartsWith('HKLM:\')) { throw "only values under HKLM:\ are read, not '$Path'" }
        if (Test-Path -LiteralPath $Path) {
            $key = Get-Item -LiteralPath $Path
            $raw = $key.GetValue($Name, $null, 'DoNotExpandEnvironmentNames')
            if ($null -ne $raw) {
                $kind = [string]$key.GetValueKind($Name)
                switch ($kind) {
                    'DWord' { $value = [BitConverter]::ToUInt32([BitConverter]::GetBytes([int]$raw), 0) }
                    'QWord' { $value = [BitConverter]::ToUInt64([BitConverter]::GetBytes([long]$raw), 0) }
                    'MultiString' { $value = @([string[]]$raw) }
                    'Binary' { $value = [BitConverter]::ToString([byte[]]$raw) -replace '-', '' }
                    default { $value = [string]$raw }
                }
            }
        }
    }
    catch {
        $problem = [string]$_.Exception.Message
        $kind = $null
        $value = $null
    }
    [ordered]@{ path = $Path; name = $Name; kind = $kind; value = $value; error = $problem }
}

function Get-DeclaredService {
    # A service by its exact name (Get-Service -Name takes wildcards: escaped), status and start
    # type as the services section reports them; both $null when it is not installed.
    param([string]$Name)
    $svc = Get-Service -Name ([Management.Automation.WildcardPattern]::Escape($Name)) -ErrorAction SilentlyContinue
    if ($null -eq $svc) { return [ordered]@{ name = $Name; status = $null; start_type = $null } }
    $startType = [string]$svc.StartType
    if (-not $startType) {
        # ServiceController.StartType needs .NET Framework 4.6.1: Win32_Service.StartMode instead
        # (Auto = Automatic, learn.microsoft.com/windows/win32/cimwin32prov/win32-service),
        # matched by name in PowerShell: a declared name never becomes WQL text.
        $wmi = @(Get-CimInstance -ClassName Win32_Service | Where-Object { $_.Name -eq $svc.Name })
        $mode = ''
        if ($wmi.Count -gt 0) { $mode = [string]$wmi[0].StartMode }
        if ($mode -eq 'Auto') { $startType = 'Automatic' } else { $startType = $mode }
    }
    [ordered]@{ name = $Name; status = [string]$svc.Status; start_type = $startType }
}

# Sessions from the WTS API: locale independent, unlike quser. Compiled once per process.
# Idle time: for a Disconnected session the time since it was disconnected (what
# MaxDisconnectionTime measures), otherwise the time since the last input; null when unknown.
$WtsSource = @'
using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Runtime.InteropServices;

namespace FleetGather
{
    public class WtsSession
    {
        public int Id;
        public string User;
        public string State;
        public long? IdleSeconds;
    }

    public static class Wts
    {
        const int WTSUserName = 5;
        const int WTSDomainName = 7;
        const int WTSSessionInfo = 24;
        static readonly string[] StateNames = {
            "Active", "Connected", "ConnectQuery", "Shadow", "Disconnected",
            "Idle", "Listen", "Reset", "Down", "Init" };

        [StructLayout(LayoutKind.Sequential)]
        struct WTS_SESSION_INFO
        {
            public int SessionId;
            public IntPtr WinStationName;
            public int State;
        }

        [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
        struct WTSINFO
        {
            public int State;
            public int SessionId;
            public int IncomingBytes;
            public int OutgoingBytes;
            public int IncomingFrames;
            public int OutgoingFrames;
            public int IncomingCompressedBytes;
            public int OutgoingCompressedBytes;
            [MarshalAs(UnmanagedType.ByValTStr, SizeConst = 32)] public string WinStationName;
            [MarshalAs(UnmanagedType.ByValTStr, SizeConst = 17)] public string Domain;
            [MarshalAs(UnmanagedType.ByValTStr, SizeConst = 21)] public string UserName;
            public long ConnectTime;
            public long DisconnectTime;
            public long LastInputTime;
            public long LogonTime;
            public long CurrentTime;
        }

        [DllImport("wtsapi32.dll", EntryPoint = "WTSEnumerateSessionsW", SetLastError = true)]
        static extern bool WTSEnumerateSessions(IntPtr server, int reserved, int version,
            out IntPtr sessions, out int count);

        [DllImport("wtsapi32.dll", EntryPoint = "WTSQuerySessionInformationW", SetLastError = true)]
        static extern bool WTSQuerySessionInformation(IntPtr server, int sessionId, int infoClass,
            out IntPtr buffer, out int bytes);

        [DllImport("wtsapi32.dll")]
        static extern void WTSFreeMemory(IntPtr memory);

        // null when the query fails: the session may have ended since the enumeration.
        static string QueryString(int sessionId, int infoClass)
        {
            IntPtr buffer;
            int bytes;
            if (!WTSQuerySessionInformation(IntPtr.Zero, sessionId, infoClass, out buffer, out bytes))
                return null;
            try
            {
                string text = Marshal.PtrToStringUni(buffer);
                return text == null ? "" : text;
            }
            finally { WTSFreeMemory(buffer); }
        }

        static long? IdleSeconds(int sessionId, int state)
        {
            IntPtr buffer;
            int bytes;
            if (!WTSQuerySessionInformation(IntPtr.Zero, sessionId, WTSSessionInfo, out buffer, out bytes))
                return null;  // idle time unknown; the session is still reported
            try
            {
                WTSINFO info = (WTSINFO)Marshal.PtrToStructure(buffer, typeof(WTSINFO));
                long since = (state == 4 && info.DisconnectTime > 0) ? info.DisconnectTime : info.LastInputTime;
                if (since <= 0 || info.CurrentTime < since) return null;
                return (info.CurrentTime - since) / 10000000L;
            }
            finally { WTSFreeMemory(buffer); }
        }

        public static List<WtsSession> GetSessions()
        {
            IntPtr first;
            int count;
            if (!WTSEnumerateSessions(IntPtr.Zero, 0, 1, out first, out count))
                throw new Win32Exception(Marshal.GetLastWin32Error());
            List<WtsSession> result = new List<WtsSession>();
            try
            {
                int size = Marshal.SizeOf(typeof(WTS_SESSION_INFO));
                for (int i = 0; i < count; i++)
                {
                    IntPtr item = new IntPtr(first.ToInt64() + (long)i * size);
                    WTS_SESSION_INFO s = (WTS_SESSION_INFO)Marshal.PtrToStructure(item, typeof(WTS_SESSION_INFO));
                    string user = QueryString(s.SessionId, WTSUserName);
                    // Gone since the enumeration, or the services session / a listener: nobody to log off.
                    if (string.IsNullOrEmpty(user)) continue;
                    string domain = QueryString(s.SessionId, WTSDomainName) ?? "";
                    WtsSession session = new WtsSession();
                    session.Id = s.SessionId;
                    session.User = domain.Length > 0 ? domain + "\\" + user : user;
                    session.State = (s.State >= 0 && s.State < StateNames.Length) ? StateNames[s.State] : s.State.ToString();
                    session.IdleSeconds = IdleSeconds(s.SessionId, s.State);
                    result.Add(session);
                }
            }
            finally { WTSFreeMemory(first); }
            return result;
        }
    }
}
'@

# One scriptblock per section (the keys are fleet.facts.SECTIONS); each returns its value.
$Gatherers = [ordered]@{
    os               = {
        $os = Get-CimInstance -ClassName Win32_OperatingSystem
        [ordered]@{
            caption = ([string]$os.Caption).Trim()
            version = [string]$os.Version
            build   = [int]$os.BuildNumber
        }
    }
    services         = {
        foreach ($name in @('TermService', 'SessionEnv', 'W32Time')) {
            $svc = Get-Service -Name $name -ErrorAction SilentlyContinue
            if ($null -eq $svc) { continue }  # not installed: absent from the list
            $startType = [string]$svc.StartType
            if (-not $startType) {
                # ServiceController.StartType needs .NET Framework 4.6.1 (stock Server 2012 R2 has
                # 4.5.1): ask WMI instead. Win32_Service.StartMode says Auto where StartType says
                # Automatic (delayed start is Automatic in both; learn.microsoft.com/windows/win32/cimwin32prov/win32-service).
                $mode = [string](Get-CimInstance -ClassName Win32_Service -Filter "Name='$name'").StartMode
                if ($mode -eq 'Auto') { $startType = 'Automatic' } else { $startType = $mode }
            }
            [ordered]@{ name = [string]$svc.Name; status = [string]$svc.Status; start_type = $startType }
        }
    }
    rdp              = {
        [ordered]@{
            deny_ts_connections            = Get-RegDword $TerminalServer 'fDenyTSConnections'
            port_number                    = Get-RegDword $RdpTcp 'PortNumber'
            security_layer                 = Get-RegDword $RdpTcp 'SecurityLayer'
            user_authentication            = Get-RegDword $RdpTcp 'UserAuthentication'
            min_encryption_level           = Get-RegDword $RdpTcp 'MinEncryptionLevel'
            # ms, 0 = never; used only when fInheritMaxDisconnectionTime is 0 (server override,
            # Win32_TSSessionSetting.TimeLimitPolicy), else the user's own limit applies.
            max_disconnection_time         = Get-RegDword $RdpTcp 'MaxDisconnectionTime'
            inherit_max_disconnection_time = Get-RegDword $RdpTcp 'fInheritMaxDisconnectionTime'
        }
    }
    rdp_policy       = {
        [ordered]@{
            security_layer         = Get-RegDword $RdpPolicyKey 'SecurityLayer'
            user_authentication    = Get-RegDword $RdpPolicyKey 'UserAuthentication'
            min_encryption_level   = Get-RegDword $RdpPolicyKey 'MinEncryptionLevel'
            max_disconnection_time = Get-RegDword $RdpPolicyKey 'MaxDisconnectionTime'
            select_transport       = Get-RegDword $RdpPolicyKey 'SelectTransport'
            client_disable_udp     = Get-RegDword "$RdpPolicyKey\Client" 'fClientDisableUDP'
            # "Allow users to connect remotely by using Remote Desktop Services" (TS_DISABLE_CONNECTIONS):
            # when configured it overrides the Terminal Server value (0 allows, 1 denies); not
            # configured, the local setting decides (learn.microsoft.com/windows/client-management/mdm/policy-csp-remotedesktopservices#allowuserstoconnectremotely).
            deny_ts_connections    = Get-RegDword $RdpPolicyKey 'fDenyTSConnections'
        }
    }
    cert             = {
        # cert.valid's rules (fleet/checks/cert.py): the bound certificate carries the Server
        # Authentication or Remote Desktop Authentication EKU ("Using certificates in Remote
        # Desktop Services": https://learn.microsoft.com/windows-server/remote/remote-desktop-services/rds-certificates)
        # and NETWORK SERVICE can read its private key (KB 3042780, see lib/certkey.ps1).
        $setting = Get-CimInstance -Namespace 'root/cimv2/TerminalServices' -ClassName Win32_TSGeneralSetting -Filter "TerminalName='RDP-Tcp'"
        $bound = [string]$setting.SSLCertificateSHA1Hash
        if (-not $bound) { $bound = $null }
        # SSLCertificateSHA1HashType: 0 not valid, 1 default self-signed, 2 default group policy
        # enforced, 3 custom (MicrosoftDocs/win32 desktop-src/TermServ/win32-tsgeneralsetting.md).
        $hashType = $null
        if ($null -ne $setting.SSLCertificateSHA1HashType) { $hashType = [int]$setting.SSLCertificateSHA1HashType }
        # "Server authentication certificate template" (TerminalServer.admx; policy CSP
        # ADMX_TerminalServer/TS_CERTIFICATE_TEMPLATE_POLICY, MicrosoftDocs/windows-itpro-docs
        # windows/client-management/mdm/policy-csp-admx-terminalserver.md): a certificate
        # selected explicitly takes precedence over it.
        $template = $null
        $templateOid = $null
        if (Test-Path -LiteralPath $RdpPolicyKey) {
            $template = [string](Get-Item -LiteralPath $RdpPolicyKey).GetValue('CertTemplateName')
            if (-not $template) { $template = $null }
        }
        # Certificates name their template by OID (version 2+): the policy's name is looked up
        # in Active Directory so fleet can tell which certificates come from it.
        if ($template) { $templateOid = Find-AdTemplate -Name $template }
        $certificates = @(foreach ($store in @('Remote Desktop', 'My')) {
                $path = "Cert:\LocalMachine\$store"
                if (-not (Test-Path -LiteralPath $path)) { continue }
                foreach ($c in @(Get-ChildItem -LiteralPath $path)) {
                    $templateId = Get-CertTemplateId $c
                    [ordered]@{
                        thumbprint      = [string]$c.Thumbprint
                        store           = $store
                        subject         = [string]$c.Subject
                        issuer          = [string]$c.Issuer
                        not_before      = Get-IsoUtc $c.NotBefore
                        not_after       = Get-IsoUtc $c.NotAfter
                        has_private_key = [bool]$c.HasPrivateKey
                        eku             = Get-EkuOids $c
                        key_readable    = Get-KeyReadable $c
                        template_oid    = $templateId.template_oid
                        template_name   = $templateId.template_name
                    }
                }
            })
        [ordered]@{
            bound_thumbprint    = $bound
            certificates        = $certificates
            hash_type           = $hashType
            template_policy     = $template
            template_policy_oid = $templateOid
        }
    }
    time             = {
        $svc = Get-Service -Name W32Time -ErrorAction SilentlyContinue
        $source = $null
        $status = $null
        if ($null -ne $svc -and [string]$svc.Status -eq 'Running') {
            # w32tm /query needs the running service (else 0x80070426, "not been started").
            $text = (Invoke-NativeText 'w32tm.exe' @('/query', '/source')).Trim()
            if ($global:LASTEXITCODE -eq 0 -and $text) { $source = $text }
            # Raw text: labels and the date are localized, so fleet reads it by position in
            # Python (fleet/checks/w32tm.py), never here with this runspace's culture.
            $text = Invoke-NativeText 'w32tm.exe' @('/query', '/status', '/verbose')
            if ($global:LASTEXITCODE -eq 0 -and $text.Trim()) { $status = $text }
        }
        # The user locale native w32tm.exe formats dates with. Over WinRM this runspace runs in
        # the client's DataLocale (PowerShell WSManPlugin.cs, SetThreadProperties), not in the
        # user's culture, so Get-Culture is only the fallback.
        $culture = Get-RegString 'HKCU:\Control Panel\International' 'LocaleName'
        if (-not $culture) { $culture = [string](Get-Culture).Name }
        $offset = [int][Math]::Round([TimeZoneInfo]::Local.GetUtcOffset([DateTime]::UtcNow).TotalMinutes)
        # Service triggers live under the service's TriggerInfo key (KB3201265 deletes
        # ...\W32Time\TriggerInfo\1; KB2385818: W32Time is trigger-started by default).
        $triggers = $false
        if (Test-Path -LiteralPath "$W32TimeKey\TriggerInfo") {
            $triggers = @(Get-ChildItem -LiteralPath "$W32TimeKey\TriggerInfo").Count -gt 0
        }
        # Only a stopped W32Time is judged by its weekly task (the task query costs time).
        $taskRun = $null
        $taskResult = $null
        if ($null -ne $svc -and [string]$svc.Status -ne 'Running') {
            try {
                $run = Get-TimeSyncRun
                if ($null -ne $run) { $taskRun = Get-IsoUtc $run.LastRunTime; $taskResult = [long]$run.LastTaskResult }
            }
            catch { $null = $_ }  # no ScheduledTasks module or no such folder: unknown
        }
        # PartOfDomain, DomainRole (0/1 workstation, 2 standalone server, 3 member server,
        # 4 backup DC, 5 primary DC = PDC emulator of its domain): win32-computersystem.md.
        # Unknown ($null) when WMI fails: fleet then plans no source rather than guess one.
        $partOfDomain = $null
        $role = $null
        try {
            $cs = Get-CimInstance -ClassName Win32_ComputerSystem
            $partOfDomain = [bool]$cs.PartOfDomain
            $role = [int]$cs.DomainRole
        }
        catch { $null = $_ }
        $forestRoot = $null
        if ($role -ge 4) { $forestRoot = Get-ForestRoot }
        # utc_now is filled in right before the output is written (see below).
        [ordered]@{
            utc_now            = $null
            source             = $source
            status_text        = $status
            culture            = $culture
            utc_offset_min     = $offset
            config             = Get-W32TimeConfig $W32TimeKey
            policy             = Get-W32TimeConfig $W32TimePolicyKey
            trigger_start      = $triggers
            sync_task_last_run = $taskRun
            sync_task_result   = $taskResult
            part_of_domain     = $partOfDomain
            domain_role        = $role
            forest_root        = $forestRoot
        }
    }
    network_profiles = {
        # CDXML (a script module's function, its own session state: about_Scopes): it does not
        # see this script's $ErrorActionPreference, so it gets its own -ErrorAction.
        foreach ($p in @(Get-NetConnectionProfile -ErrorAction Stop)) {
            [ordered]@{
                interface_alias  = [string]$p.InterfaceAlias
                network_category = [string]$p.NetworkCategory
            }
        }
    }
    firewall         = {
        # Rules come from the registry stores, not from Get-NetFirewallRule: on a host with
        # thousands of rules (RD Session Hosts add per-user app rules at every logon) a CIM query
        # enumerates them all and takes tens of seconds. Each value of a FirewallRules key is one
        # rule: the value name is the rule's ID (Get-NetFirewallRule -Name), the data its [MS-GPFAS]
        # 2.2.2.19 rule string (https://learn.microsoft.com/openspecs/windows_protocols/ms-gpfas/2efe0b76-7b4a-41ff-9050-1023f8196d16),
        # parsed by fleet (fleet/checks/fwrules.py). The Group Policy store is the key that spec
        # documents; the local store (PersistentStore) is SharedAccess\...\FirewallRules, in the
        # same format ("Enable or disable a firewall rule on an Azure VM guest OS",
        # https://learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/enable-disable-firewall-rule-guest-os).
        # The ActiveStore is the sum of the stores that apply ("a collection of all of the policy
        # stores that apply to the computer", Get-NetFirewallRule); fleet merges the two stores
        # the same way: a Group Policy rule overwrites a local rule of the same ID
        # (Set-NetFirewallRule -Name), local rules are dropped where AllowLocalFirewallRules is
        # False. Not read here: the MDM store, the service-hardening stores (Static/Configurable
        # ServiceStore) and rules added at run time.
        # Only candidates are sent: the two RDP rules whatever their state, and every active
        # inbound rule that could match TCP on the listener port (protocol TCP or any; no local
        # port, this port, or a range), except app-container rules (AppPkgId/LUOwn: a package's
        # per-user rules, never TermService's). fleet decides the rest.
        $port = Get-RegDword $RdpTcp 'PortNumber'
        if ($null -eq $port) { $port = 3389 }
        $rdpRules = @('RemoteDesktop-UserMode-In-TCP', 'RemoteDesktop-UserMode-In-UDP')
        $portToken = '\|LPort(2_10)?=(' + [string]$port + '|\d+-\d+)\|'
        $rules = @(foreach ($store in @('Local', 'GroupPolicy')) {
                $path = $LocalRuleStore
                if ($store -eq 'GroupPolicy') { $path = "$FirewallPolicyKey\FirewallRules" }
                if (-not (Test-Path -LiteralPath $path)) { continue }
                $key = Get-Item -LiteralPath $path
                foreach ($name in $key.GetValueNames()) {
                    $text = [string]$key.GetValue($name)
                    $candidate = ($rdpRules -contains $name) -or (
                        $text.Contains('|Dir=In|') -and $text.Contains('|Active=TRUE|') -and
                        $text -notmatch '\|(AppPkgId|LUOwn)=' -and
                        ($text -notmatch '\|Protocol=' -or $text.Contains('|Protocol=6|')) -and
                        ($text -notmatch '\|LPort' -or $text -match $portToken))
                    if ($candidate) { [ordered]@{ store = $store; name = [string]$name; text = $text } }
                }
            })
        # ActiveStore: the effective settings, Group Policy included. AllowInboundRules False
        # ignores every inbound rule; AllowLocalFirewallRules False ignores the local ones
        # (Set-NetFirewallProfile). Enum values are sent by name, never cast.
        $profiles = @(foreach ($p in @(Get-NetFirewallProfile -PolicyStore ActiveStore -ErrorAction Stop)) {
                [ordered]@{
                    name                       = [string]$p.Name
                    enabled                    = ([string]$p.Enabled -eq 'True')
                    default_inbound_action     = [string]$p.DefaultInboundAction
                    allow_inbound_rules        = [string]$p.AllowInboundRules
                    allow_local_firewall_rules = [string]$p.AllowLocalFirewallRules
                }
            })
        # "Allow inbound Remote Desktop exceptions" (windowsfirewall.admx) exists for the Domain
        # Profile and the Standard Profile only: StandardProfile is what Private and Public get.
        # A per-profile key is read first in case a template ever writes one.
        $policy = @(foreach ($zone in @('Domain', 'Private', 'Public')) {
                $keys = @("${zone}Profile")
                if ($zone -ne 'Domain') { $keys += 'StandardProfile' }
                foreach ($key in $keys) {
                    $value = Get-RegDword "$FirewallPolicyKey\$key\Services\RemoteDesktop" 'Enabled'
                    if ($null -ne $value) { [ordered]@{ profile = $zone; enabled = $value }; break }
                }
            })
        [ordered]@{ listener_port = $port; rules = $rules; profiles = $profiles; rdp_policy = $policy }
    }
    tls12            = {
        [ordered]@{
            enabled             = Get-RegDword $Tls12Server 'Enabled'
            disabled_by_default = Get-RegDword $Tls12Server 'DisabledByDefault'
        }
    }
    credssp          = {
        [ordered]@{ allow_encryption_oracle = Get-RegDword $CredSspKey 'AllowEncryptionOracle' }
    }
    sessions         = {
        try {
            if (-not ('FleetGather.Wts' -as [type])) { Add-Type -TypeDefinition $WtsSource | Out-Null }
            $wts = 'FleetGather.Wts' -as [type]
            $items = @(foreach ($s in $wts::GetSessions()) {
                    [ordered]@{ id = [int]$s.Id; user = [string]$s.User; state = [string]$s.State; idle_seconds = $s.IdleSeconds }
                })
            [ordered]@{ source = 'wts'; items = $items; quser_text = $null; wts_error = $null }
        }
        catch {
            # Add-Type could not compile (e.g. csc.exe blocked by an executable rule while scripts
            # run unrestricted, or no writable TEMP) or the WTS API failed: send the raw quser
            # text and why; fleet parses it. ConstrainedLanguage never gets here: the script
            # stops at its first statement. A non-zero exit (nobody logged on) is not an error.
            $why = [string]$_.Exception.Message
            [ordered]@{ source = 'quser'; items = @(); quser_text = Invoke-NativeText 'quser.exe' @(); wts_error = $why }
        }
    }
    declared         = {
        # What the playbook's declarative items name (fleet/checks/declared.py): registry
        # values, services, and firewall rules by ID from the same two registry stores the
        # firewall section reads ([MS-GPFAS] 2.2.2.19 strings, parsed by fleet/checks/fwrules.py).
        # The names arrive in the parameter document ("declared"), never as script text.
        param([string]$RequestJson)
        $request = $null
        if ($RequestJson) { $request = (ConvertFrom-Json -InputObject $RequestJson).declared }
        $values = @(foreach ($item in @($request.registry | Where-Object { $_ })) {
                Get-DeclaredValue ([string]$item.path) ([string]$item.name)
            })
        $services = @(foreach ($name in @($request.services | Where-Object { $_ })) {
                Get-DeclaredService ([string]$name)
            })
        $rules = @(foreach ($name in @($request.firewall_rules | Where-Object { $_ })) {
                foreach ($store in @('Local', 'GroupPolicy')) {
                    $path = $LocalRuleStore
                    if ($store -eq 'GroupPolicy') { $path = "$FirewallPolicyKey\FirewallRules" }
                    if (-not (Test-Path -LiteralPath $path)) { continue }
                    $text = (Get-Item -LiteralPath $path).GetValue([string]$name)
                    if ($null -ne $text) { [ordered]@{ store = $store; name = [string]$name; text = [string]$text } }
                }
            })
        [ordered]@{ registry = $values; services = $services; firewall_rules = $rules }
    }
    reboot           = {
        # Is a restart pending? The markers Configuration Manager's prerequisite check reads
        # ("Pending system restart", https://learn.microsoft.com/mem/configmgr/core/servers/deploy/install/list-of-prerequisite-checks#pending-system-restart):
        # the RebootPending key of Component Based Servicing, the RebootRequired key of Windows
        # Update, Server Manager's CurrentRebootAttempts value (a role or feature installed or
        # removed), and Session Manager's PendingFileRenameOperations (REG_MULTI_SZ: the renames
        # MoveFileEx MOVEFILE_DELAY_UNTIL_REBOOT queues for the next boot,
        # https://learn.microsoft.com/windows/win32/api/winbase/nf-winbase-movefileexa).
        # None records when it was set. The uptime (Win32_OperatingSystem.LastBootUpTime, "Date
        # and time the operating system was last restarted": learn.microsoft.com/windows/win32/cimwin32prov/win32-operatingsystem)
        # tells fleet whether a change it applied came after the last boot; both ends are this
        # host's clock, so its skew cancels out. A DateTime, never text: nothing localized.
        $renames = (Get-Item -LiteralPath $SessionManagerKey).GetValue('PendingFileRenameOperations')
        $serverManager = 'HKLM:\SOFTWARE\Microsoft\ServerManager'
        $attempts = $null
        if (Test-Path -LiteralPath $serverManager) { $attempts = (Get-Item -LiteralPath $serverManager).GetValue('CurrentRebootAttempts') }
        $uptime = $null
        try {
            $boot = (Get-CimInstance -ClassName Win32_OperatingSystem).LastBootUpTime
            if ($null -ne $boot) { $uptime = [long]([DateTime]::UtcNow - $boot.ToUniversalTime()).TotalSeconds }
        }
        catch { $null = $_ }  # unknown: fleet then relies on the markers alone
        [ordered]@{
            cbs_reboot_pending  = (Test-Path -LiteralPath "$CbsKey\RebootPending")
            wu_reboot_required  = (Test-Path -LiteralPath "$WindowsUpdateKey\RebootRequired")
            pending_file_rename = ($null -ne $renames -and @($renames).Count -gt 0)
            server_manager_reboot = ($null -ne $attempts)
            uptime_s            = $uptime
        }
    }
}
$ListSections = @('services', 'network_profiles')
}
. $SectionLibrary

# --- The main loop: every section under a time budget, one frame whatever happens ------------
# Why: a section can hang (a CIM provider stuck behind a busy service, a firewall with tens of
# thousands of rules) and fleet gives up on a host at its per-host deadline; a script that
# prints its one frame at the end would then return nothing at all. So each section runs on a
# worker: a PowerShell instance on a runspace of its own (a background thread), started with
# BeginInvoke, which this thread waits for (WaitHandle.WaitOne) at most the section's budget
# ("section_budget_s"), and never past the deadline ("deadline_s", counted from the start of
# this script; fleet derives both from its per-host timeout, minus a margin for the round trip).
# A section that overruns is named in "errors" as timed out and its worker abandoned with
# BeginStop, which does not wait (a CIM call may not notice a stop); the next section gets a
# fresh runspace. Sections not started by the deadline are named as timed out too.
# PowerShell.BeginInvoke / BeginStop / EndInvoke: https://learn.microsoft.com/dotnet/api/system.management.automation.powershell
# (Windows PowerShell 5.1 and PowerShell 7 alike). The worker runs the library's text, not
# the script blocks themselves: a script block is bound to the runspace that created it.
# Where runspaces cannot be created (ConstrainedLanguage mode allows no such .NET calls) the
# sections run here, one after the other, without a budget.
$errors = [ordered]@{}
$facts = [ordered]@{ script_version = 2; hostname = [string]$env:COMPUTERNAME; errors = $errors }
$started = [DateTime]::UtcNow
$deadlineS = 24.0
$sectionBudgetS = 12.0

$requested = @()
try {
    $params = ConvertFrom-Json -InputObject $ParamsJson
    if ($null -ne $params.PSObject.Properties['sections']) {
        $requested = @($params.sections | Where-Object { $_ } | ForEach-Object { [string]$_ })
    }
    else {
        $requested = @($Gatherers.Keys)
    }
    if ($null -ne $params.PSObject.Properties['deadline_s']) { $deadlineS = [double]$params.deadline_s }
    if ($null -ne $params.PSObject.Properties['section_budget_s']) { $sectionBudgetS = [double]$params.section_budget_s }
}
catch {
    $errors['params'] = "ParamsJson is not valid JSON: $($_.Exception.Message)"
}

$worker = $null
$useWorker = $true

foreach ($name in ($requested | Select-Object -Unique)) {
    if (-not $Gatherers.Contains($name)) {
        $errors[$name] = "unknown section '$name'"
        continue
    }
    $left = $deadlineS - ([DateTime]::UtcNow - $started).TotalSeconds
    if ($left -le 0) {
        $errors[$name] = "timed out: not started before the gather deadline (" + [string]$deadlineS + " s)"
        continue
    }
    try {
        if ($useWorker -and $null -eq $worker) {
            try {
                $worker = [powershell]::Create()
                $worker.Runspace = [runspacefactory]::CreateRunspace()
                $worker.Runspace.Open()
                # What the worker runs: the library, then the section named by its first
                # argument, given the parameter document as its own (the declared section
                # reads what it names from it; the others take nothing).
                $sectionScript = $SectionLibrary.ToString() + "`n" + '& $Gatherers[$args[0]] $args[1]'
            }
            catch {
                $useWorker = $false  # no runspaces here: run the sections inline
                $worker = $null
            }
        }
        if ($useWorker) {
            $wait = [Math]::Min($left, $sectionBudgetS)
            $worker.Commands.Clear()
            [void]$worker.AddScript($sectionScript).AddArgument($name).AddArgument($ParamsJson)
            $running = $worker.BeginInvoke()
            if (-not $running.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds($wait))) {
                [void]$worker.BeginStop($null, $null)
                $worker = $null
                throw ("timed out after " + [string][Math]::Round($wait, 1) + " s")
            }
            $output = @($worker.EndInvoke($running))
        }
        else {
            $output = @(& $Gatherers[$name] $ParamsJson)
        }
        # A list section stays a list with one element or none.
        if ($ListSections -contains $name) { $facts[$name] = $output }
        elseif ($output.Count -gt 0) { $facts[$name] = $output[0] }
        else { $facts[$name] = $null }
    }
    catch {
        # EndInvoke wraps the section's own error in a MethodInvocationException.
        $problem = $_.Exception
        if ($useWorker -and $null -ne $problem.InnerException) { $problem = $problem.InnerException }
        $errors[$name] = [string]$problem.Message
    }
}

# The host clock as late as possible: fleet measures skew against its own send/receive times.
if ($facts.Contains('time') -and $null -ne $facts['time']) { $facts['time']['utc_now'] = [DateTime]::UtcNow.ToString('o') }

$json = ConvertTo-Json -InputObject $facts -Depth 10 -Compress
# Escape non-ASCII characters (the frame survives any console code page) and < > (no value,
# such as a certificate subject, can contain a frame marker). Both occur only inside strings.
$toEscape = [System.Text.RegularExpressions.MatchEvaluator] { param($m) '\u{0:x4}' -f [int][char]$m.Value }
$json = [regex]::Replace($json, '[^\x00-\x7F]|[<>]', $toEscape)
Write-Output ('<<FLEET-JSON>>' + $json + '<<FLEET-END>>')
