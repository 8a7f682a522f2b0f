"""A USB camera (or a video file) and face_recognition_node wired to it.

    ros2 launch face_recog_ros webcam.launch.py
    ros2 launch face_recog_ros webcam.launch.py device:=/dev/video2 width:=1280 height:=720 fps:=15
    ros2 launch face_recog_ros webcam.launch.py device:=/path/to/video.mp4

camera_publisher publishes camera/image_raw (and camera/image_raw/compressed with
publish_compressed); the recognition node is face_recognition.launch.py on that topic.
webcam.launch.xml is the same launch file in XML. Both processes get the Fast DDS profile
(fastdds_profile), so the camera's raw frames reach the node intact.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.actions import SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

IMAGE_TOPIC = 'camera/image_raw'  # relative: follows the namespace argument
# Fast DDS 2.x (Humble, Iron, Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE, 3.x the FASTDDS_ one.
FASTDDS_2_DISTROS = ('humble', 'iron', 'jazzy')


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory('face_recog_ros')
    default_params = os.path.join(share, 'config', 'face_recognition.yaml')
    default_profile = os.path.join(share, 'config', 'fastdds_large_frames.xml')
    fastdds_2 = IfCondition(str(os.environ.get('ROS_DISTRO') in FASTDDS_2_DISTROS).lower())
    camera = Node(
        package='face_recog_ros',
        executable='camera_publisher',
        name='camera_publisher',
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        emulate_tty=True,
        parameters=[{
            # A string either way: "0" is a device index, anything else a device or file path.
            'device': ParameterValue(LaunchConfiguration('device'), value_type=str),
            'width': ParameterValue(LaunchConfiguration('width'), value_type=int),
            'height': ParameterValue(LaunchConfiguration('height'), value_type=int),
            'fps': ParameterValue(LaunchConfiguration('fps'), value_type=float),
            'frame_id': ParameterValue(LaunchConfiguration('frame_id'), value_type=str),
        }],
        remappings=[('image', IMAGE_TOPIC)],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
    )
    recognition = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(share, 'launch', 'face_recognition.launch.py')),
        launch_arguments={
            'image_topic': IMAGE_TOPIC,
            'namespace': LaunchConfiguration('namespace'),
            'params_file': LaunchConfiguration('params_file'),
            'log_level': LaunchConfiguration('log_level'),
            'autostart': LaunchConfiguration('autostart'),
            'fastdds_profile': LaunchConfiguration('fastdds_profile'),
        }.items(),
    )
    return LaunchDescription([
        DeclareLaunchArgument('device', default_value='0',
                              description='Camera index (0 = /dev/video0), device path, or '
                                          'video file'),
        DeclareLaunchArgument('width', default_value='640',
                              description='Capture width (0: camera default)'),
        DeclareLaunchArgument('height', default_value='480',
                              description='Capture height (0: camera default)'),
        DeclareLaunchArgument('fps', default_value='30.0',
                              description='Frames per second to publish at most'),
        DeclareLaunchArgument('frame_id', default_value='camera_optical_frame',
                              description='frame_id of the published images (REP 103 optical '
                                          'frame)'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace of both nodes'),
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='ROS parameters YAML for face_recognition_node'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='debug, info, warn, error or fatal'),
        DeclareLaunchArgument('autostart', default_value='true', choices=['true', 'false'],
                              description='true: the recognition node configures and activates '
                                          'itself; false: lifecycle events do'),
        DeclareLaunchArgument('fastdds_profile', default_value=default_profile,
                              description='Fast DDS XML profile for both processes'),
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE',
                               LaunchConfiguration('fastdds_profile')),
        SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE',
                               LaunchConfiguration('fastdds_profile'), condition=fastdds_2),
        camera,
        recognition,
    ])
